// The flashnas binary: parses the command line and turns exceptions into a
// message on stderr and an exit code (2 for bad input, 1 for other failures,
// 128 + the signal for work stopped safely by SIGINT or SIGTERM).
#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>

#include <iostream>
#include <string>

#include "cli/commands.h"
#include "common/error.h"
#include "common/stop.h"
#include "common/version.h"

// The first word of argv that is not a command where one is required (for
// example "flashnas serach" or "flashnas arch shwo"), with the commands that
// level has; CLI11 alone would say only "A subcommand is required".
static bool unknown_command(const CLI::App& app, int argc, char** argv) {
  const CLI::App* at = &app;
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word.empty() || word[0] == '-') return false;
    const auto subs = at->get_subcommands([](const CLI::App* s) { return !s->get_name().empty(); });
    if (subs.empty()) return false;
    const CLI::App* next = nullptr;
    for (const CLI::App* s : subs) {
      if (s->check_name(word)) next = s;
    }
    if (next) {
      at = next;
      continue;
    }
    if (at->get_require_subcommand_min() == 0) return false;
    std::string names;
    for (const CLI::App* s : subs) names += (names.empty() ? "" : ", ") + s->get_name();
    const std::string where = at == &app ? "flashnas" : "flashnas " + at->get_name();
    std::cerr << "flashnas: error: unknown command \"" << word << "\" for " << where << "; commands: " << names
              << " (" << where << " --help says what each does)\n";
    return true;
  }
  return false;
}

int main(int argc, char** argv) {
  CLI::App app{"flashnas: find latency-optimal hybrid small language models for a device", "flashnas"};
  app.require_subcommand(1);
  app.set_version_flag("--version",
                       "flashnas " + flashnas::version_string() + " (commit " + flashnas::git_commit() +
                           ", LibTorch " + flashnas::torch_version() + ", " + flashnas::build_type() +
                           ", CUDA paths: " + (flashnas::cuda_paths_built() ? "built" : "not built") + ")");
  flashnas::cli::add_arch_command(app);
  flashnas::cli::add_data_command(app);
  flashnas::cli::add_train_command(app);
  flashnas::cli::add_profile_command(app);
  flashnas::cli::add_latency_command(app);
  flashnas::cli::add_bench_command(app);
  flashnas::cli::add_search_command(app);
  flashnas::cli::add_frontier_command(app);
  flashnas::cli::add_export_command(app);
  flashnas::cli::add_generate_command(app);
  flashnas::cli::add_eval_command(app);
  flashnas::cli::add_proxy_command(app);
  flashnas::cli::add_bench_table_command(app);
  flashnas::cli::add_bench_search_command(app);
  flashnas::cli::add_study_command(app);
  flashnas::cli::add_worker_command(app);
  flashnas::cli::add_launch_command(app);
  flashnas::cli::add_compare_command(app);
  flashnas::cli::add_report_command(app);
  if (unknown_command(app, argc, argv)) return flashnas::kExitBadInput;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help/--version exit 0; usage errors exit 2 with CLI11's message.
    const int code = app.exit(e);
    return code == 0 ? flashnas::kExitOk : flashnas::kExitBadInput;
  } catch (const flashnas::Stopped& e) {
    std::cerr << "flashnas: " << e.what() << "\n";
    return e.exit_code();
  } catch (const flashnas::InputError& e) {
    std::cerr << "flashnas: error: " << e.what() << "\n";
    return flashnas::kExitBadInput;
  } catch (const c10::Error& e) {
    std::cerr << "flashnas: error: " << e.what_without_backtrace() << "\n";
    return flashnas::kExitFailure;
  } catch (const std::exception& e) {
    std::cerr << "flashnas: error: " << e.what() << "\n";
    return flashnas::kExitFailure;
  }
  return flashnas::kExitOk;
}
