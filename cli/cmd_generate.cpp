// `flashnas generate`: decode text from a model folder with its recurrent cache.
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "common/json_io.h"
#include "common/threads.h"
#include "train/generate.h"

namespace flashnas::cli {

void add_generate_command(CLI::App& app) {
  struct Opts {
    std::string model, prompt;
    GenerateOptions g;
    int threads = 0;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("generate", "Decode text from an exported model with its recurrent cache");
  cmd->add_option("--model", o->model, "Model folder (flashnas export or train)")->required();
  cmd->add_option("--prompt", o->prompt, "Prompt text")->required();
  cmd->add_option("--tokens", o->g.tokens, "Tokens to generate")->capture_default_str();
  cmd->add_option("--temperature", o->g.temperature, "Sampling temperature (0: greedy)")->capture_default_str();
  cmd->add_option("--seed", o->g.seed, "Sampling seed")->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads (0: LibTorch default)")->capture_default_str();
  cmd->add_flag("--json", o->json, "Print a JSON object with the text and timings");
  cmd->callback([o] {
    use_threads(o->threads, "--threads");
    const Generated g = generate_text(load_model_dir(o->model), o->prompt, o->g);
    if (o->json) {
      std::cout << json{{"prompt", o->prompt}, {"text", g.text}, {"tokens", o->g.tokens},
                        {"prompt_tokens", g.prompt_ids.size()}, {"prefill_ms", g.prefill_ms},
                        {"decode_ms_per_token", g.decode_ms_per_token}}
                       .dump(2, ' ', false, json::error_handler_t::replace)  // byte tokens need not form UTF-8
                << "\n";
      return;
    }
    std::printf("%s%s\n", o->prompt.c_str(), g.text.c_str());
    std::fprintf(stderr, "prefill %zu tokens: %.2f ms; decode %lld tokens: %.3f ms/token\n", g.prompt_ids.size(),
                 g.prefill_ms, static_cast<long long>(o->g.tokens), g.decode_ms_per_token);
  });
}

}  // namespace flashnas::cli
