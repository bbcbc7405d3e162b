// `flashnas eval`: a model folder's loss, perplexity and bits per byte on
// given data, or the next-token logits of a prompt written to a file.
#include <chrono>
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "common/error.h"
#include "common/format.h"
#include "common/threads.h"
#include "train/evaluate.h"

namespace flashnas::cli {

void add_eval_command(CLI::App& app) {
  struct Opts {
    std::string model, data, logits, out;
    EvalOptions e;
    TaskEvalOptions t;
    std::string split = "auto";
    int threads = 0;
    bool json = false, quiet = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("eval", "Loss, perplexity and bits per byte of a model folder on data; or a prompt's logits");
  cmd->add_option("--model", o->model, "Model folder (flashnas export or train)")->required();
  auto* data = cmd->add_option("--data", o->data, "Token file made with the model's tokenizer, or UTF-8 text (file or folder)");
  auto* logits = cmd->add_option("--logits", o->logits, "Write the next-token logits of this prompt, every position (with --out)");
  cmd->add_option("--out", o->out, "--logits: FILE.safetensors (tensor \"logits\" [T, V]) or FILE.npy (float32)");
  data->excludes(logits);
  cmd->add_option("--seq-len", o->e.seq_len, "Tokens per window (0: the model's training length)")->capture_default_str();
  cmd->add_option("--max-tokens", o->e.max_tokens, "Predict at most this many tokens (0: all)")->capture_default_str();
  cmd->add_option("--batch", o->e.batch, "Windows per forward pass")->capture_default_str();
  cmd->add_option("--split", o->split,
                  "Task data: auto (the held-out records when --data is the model's own training file, else all), val, all")
      ->capture_default_str();
  cmd->add_option("--generate", o->t.generate_records, "Task data: records completed greedily for exact match and JSON (-1: all)")
      ->capture_default_str();
  cmd->add_option("--max-new-tokens", o->t.max_new, "Task data: greedy tokens per record (0: the reference's + 32)")
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads (0: LibTorch default)")->capture_default_str();
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->add_flag("--quiet", o->quiet, "No progress lines");
  cmd->callback([o] {
    if (o->data.empty() == o->logits.empty()) throw InputError("eval: give --data FILE, or --logits PROMPT with --out FILE");
    if (!o->logits.empty() && o->out.empty()) throw InputError("--logits: needs --out FILE.safetensors or FILE.npy");
    if (o->logits.empty() && !o->out.empty()) throw InputError("--out: only with --logits");
    if (!o->out.empty()) check_logits_output(o->out);
    use_threads(o->threads, "--threads");
    const LoadedModel m = load_model_dir(o->model);
    if (!o->logits.empty()) {
      const PromptLogits p = prompt_logits(m, o->logits);
      write_logits(o->out, p);
      if (o->json) {
        std::cout << json{{"prompt_tokens", p.tokens.size()}, {"vocab_size", p.logits.size(1)}, {"out", o->out}}.dump(2) << "\n";
      } else {
        std::printf("logits [%zu, %lld] of %zu prompt tokens written to %s\n", p.tokens.size(),
                    static_cast<long long>(p.logits.size(1)), p.tokens.size(), o->out.c_str());
      }
      return;
    }
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    auto last = t0;
    if (is_task_data(o->data)) {
      o->t.batch = o->e.batch;
      std::string which;
      std::string phase;
      auto phase_t0 = t0;
      const TaskEvalResult r = evaluate_model_task(m, o->data, o->split, o->t, &which, [&](const char* what, int64_t done, int64_t total) {
        const auto now = clock::now();
        if (phase != what) phase = what, phase_t0 = now;
        if (o->quiet || now - last < std::chrono::seconds(2)) return;
        last = now;
        const double s = std::chrono::duration<double>(now - phase_t0).count();
        std::fprintf(stderr, "eval: %s %lld / %lld records, ETA %s\n", what, static_cast<long long>(done), static_cast<long long>(total),
                     format_duration(s * double(total - done) / double(std::max<int64_t>(1, done))).c_str());
      });
      if (o->json) {
        json j = r.to_json();
        j["model"] = o->model;
        j["data"] = o->data;
        j["records_evaluated"] = which;
        std::cout << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
        return;
      }
      std::printf("%s on %s:\n%s (%.1f s)\n", o->model.c_str(), which.c_str(), r.summary().c_str(), r.seconds);
      for (const auto& mm : r.mismatches) {
        std::printf("  mismatch: ...%s\n    expected: %s\n    got:      %s\n", mm.prompt_tail.c_str(), mm.expected.c_str(),
                    mm.got.c_str());
      }
      return;
    }
    if (o->split != "auto") throw InputError("--split: only for task data (a task token file or .jsonl)");
    const EvalResult r = evaluate_model(m, o->data, o->e, [&](int64_t done, int64_t total) {
      const auto now = clock::now();
      if (o->quiet || now - last < std::chrono::seconds(2)) return;
      last = now;
      const double s = std::chrono::duration<double>(now - t0).count();
      std::fprintf(stderr, "eval: %s / %s tokens, ETA %s\n", format_count(double(done)).c_str(),
                   format_count(double(total)).c_str(), format_duration(s * double(total - done) / double(done)).c_str());
    });
    if (o->json) {
      json j = r.to_json();
      j["model"] = o->model;
      j["data"] = o->data;
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("%s on %s: %s tokens predicted in %lld documents (%lld windows of up to %lld)\n", o->model.c_str(),
                o->data.c_str(), with_commas(r.tokens).c_str(), static_cast<long long>(r.docs),
                static_cast<long long>(r.windows), static_cast<long long>(r.seq_len));
    std::printf("loss %.4f, perplexity %.3f, %.4f bits/byte (%.1f s)\n", r.loss, r.perplexity, r.bits_per_byte, r.seconds);
  });
}

}  // namespace flashnas::cli
