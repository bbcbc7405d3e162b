// `flashnas export`: a trial of a study as a model folder; `flashnas
// generate`: decode text from such a folder with the recurrent cache.
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "common/error.h"
#include "common/threads.h"
#include "search/export.h"
#include "train/checkpoint.h"

namespace flashnas::cli {

void add_export_command(CLI::App& app) {
  struct Opts {
    ExportOptions e;
    std::string db, lut, out;
    bool json = false, no_measure = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("export", "Write a trial as a model folder (safetensors, config, latency report, card)");
  cmd->add_option("--db", o->db, "Study database")->required();
  cmd->add_option("--study", o->e.study, "Study name")->required();
  cmd->add_option("--trial", o->e.trial, "Trial number (default: the study's best)");
  cmd->add_option("--out", o->out, "Folder to create")->required();
  cmd->add_option("--lut", o->lut, "LUT database, when not in --db");
  cmd->add_option("--train-tokens", o->e.train_tokens,
                  "Train the architecture again for this many tokens first (0: keep the trial's weights)")
      ->capture_default_str();
  cmd->add_option("--threads", o->e.threads, "Training threads (0: LibTorch default)")->capture_default_str();
  cmd->add_flag("--no-measure", o->no_measure, "Do not bench the budgets' workloads");
  cmd->add_flag("--json", o->json, "Print latency.json");
  cmd->callback([o] {
    o->e.db = o->db;
    o->e.lut_db = o->lut;
    o->e.out = o->out;
    o->e.measure = !o->no_measure;
    const json lat = export_trial(o->e, [](const std::string& s) { std::fprintf(stderr, "%s\n", s.c_str()); });
    if (o->json) {
      std::cout << lat.dump(2) << "\n";
      return;
    }
    for (const auto& b : lat["budgets"]) {
      std::printf("%-14s %-34s predicted %8.2f ms", b["budget"]["name"].get<std::string>().c_str(),
                  b["budget"]["workload"].get<std::string>().c_str(), b["predicted_ms"].get<double>());
      if (!b["measured_ms"].is_null()) {
        std::printf("  measured %8.2f ms  (%+.1f%%)", b["measured_ms"].get<double>(), 100 * b["error"].get<double>());
      }
      std::printf("\n");
    }
    std::printf("exported to %s\n", o->out.c_str());
  });
}

void add_generate_command(CLI::App& app) {
  struct Opts {
    std::string model, prompt;
    int64_t tokens = 64;
    double temperature = 0;
    uint64_t seed = 0;
    int threads = 0;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("generate", "Decode text from an exported model with its recurrent cache");
  cmd->add_option("--model", o->model, "Model folder (flashnas export or train)")->required();
  cmd->add_option("--prompt", o->prompt, "Prompt text")->required();
  cmd->add_option("--tokens", o->tokens, "Tokens to generate")->capture_default_str();
  cmd->add_option("--temperature", o->temperature, "Sampling temperature (0: greedy)")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Sampling seed")->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads (0: LibTorch default)")->capture_default_str();
  cmd->add_flag("--json", o->json, "Print a JSON object with the text and timings");
  cmd->callback([o] {
    if (o->tokens <= 0) throw InputError("--tokens: must be positive");
    if (o->temperature < 0) throw InputError("--temperature: must be >= 0");
    use_threads(o->threads, "--threads");
    LoadedModel m = load_model_dir(o->model);
    std::vector<int32_t> ids = m.tokenizer->encode(o->prompt);
    if (ids.empty()) throw InputError("--prompt: must not be empty");
    c10::InferenceMode guard;
    torch::manual_seed(o->seed);
    auto prompt = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong).unsqueeze(0);
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    auto [logits, cache] = m.model->prefill(prompt, int64_t(ids.size()) + o->tokens);
    const auto t1 = clock::now();
    auto pick = [&](const torch::Tensor& l) {
      if (o->temperature == 0) return l.argmax(-1);
      return torch::multinomial(torch::softmax(l / o->temperature, -1), 1).squeeze(-1);
    };
    torch::Tensor tok = pick(logits.select(1, logits.size(1) - 1));
    std::vector<int32_t> out;
    for (int64_t i = 0; i < o->tokens; ++i) {
      out.push_back(int32_t(tok.item<int64_t>()));
      if (i + 1 < o->tokens) tok = pick(m.model->step(tok, cache));
    }
    const auto t2 = clock::now();
    const double prefill_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
    const double decode_ms = std::chrono::duration<double, std::milli>(t2 - t1).count();
    const double per_tok = o->tokens > 1 ? decode_ms / double(o->tokens - 1) : 0;
    const std::string text = m.tokenizer->decode(out);
    if (o->json) {
      std::cout << json{{"prompt", o->prompt}, {"text", text}, {"tokens", o->tokens}, {"prompt_tokens", ids.size()},
                        {"prefill_ms", prefill_ms}, {"decode_ms_per_token", per_tok}}
                       .dump(2, ' ', false, json::error_handler_t::replace)  // byte tokens need not form UTF-8
                << "\n";
      return;
    }
    std::printf("%s%s\n", o->prompt.c_str(), text.c_str());
    std::fprintf(stderr, "prefill %zu tokens: %.2f ms; decode %lld tokens: %.3f ms/token\n", ids.size(), prefill_ms,
                 static_cast<long long>(o->tokens), per_tok);
  });
}

}  // namespace flashnas::cli
