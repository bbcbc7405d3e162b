// The flashnas binary: parses the command line and turns exceptions into a
// message on stderr and an exit code (2 for bad input, 1 for other failures,
// 128 + the signal for work stopped safely by SIGINT or SIGTERM).
#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>

#include <iostream>

#include "cli/commands.h"
#include "common/error.h"
#include "common/stop.h"
#include "common/version.h"

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
