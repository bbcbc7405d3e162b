// `flashnas arch`: inspect ArchSpecs (show, canon) and the operator registry (ops).
#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "common/device.h"
#include "common/format.h"
#include "supernet/accounting.h"
#include "supernet/arch_spec.h"
#include "supernet/registry.h"

namespace flashnas::cli {
namespace {

struct ShowOptions {
  std::string file;
  int64_t context = 2048;
  std::string dtype = "float32";
  bool json = false;
};

void print_table(const ArchSpec& spec, const ModelAccount& m, const ShowOptions& o) {
  std::printf("%s  (hash %s)\n", spec.name.empty() ? o.file.c_str() : spec.name.c_str(), spec.short_hash().c_str());
  std::printf("d_model %lld, vocab %lld, meta tokens %lld, %s embeddings, %zu sublayers\n\n",
              static_cast<long long>(spec.d_model), static_cast<long long>(spec.vocab_size),
              static_cast<long long>(spec.n_meta_tokens), spec.tie_embeddings ? "tied" : "untied", spec.layers.size());
  const std::string state_col = "state@" + std::to_string(o.context);
  std::printf("%5s  %-8s %-26s %14s %12s %12s\n", "index", "type", "hyperparameters", "params", "decode/tok",
              state_col.c_str());
  for (const auto& l : m.layers) {
    std::printf("%5lld  %-8s %-26s %14s %12s %12s\n", static_cast<long long>(l.index), l.type.c_str(),
                l.summary.c_str(), with_commas(l.params).c_str(), format_flops(l.flops_decode).c_str(),
                format_bytes(static_cast<double>(l.state_bytes)).c_str());
  }
  std::printf("%5s  %-35s %14s\n", "", "embedding", with_commas(m.params_embedding).c_str());
  if (m.params_meta > 0) std::printf("%5s  %-35s %14s\n", "", "meta tokens", with_commas(m.params_meta).c_str());
  std::printf("%5s  %-35s %14s\n", "", "final norm", with_commas(m.params_final_norm).c_str());
  std::printf("%5s  %-35s %14s\n", "", spec.tie_embeddings ? "lm head (tied)" : "lm head",
              with_commas(m.params_head).c_str());
  std::printf("%5s  %-35s %14s  (%s)\n\n", "", "total", with_commas(m.params_total).c_str(),
              format_count(static_cast<double>(m.params_total)).c_str());
  std::printf("FLOPs/token, decode at context %lld:  %s\n", static_cast<long long>(o.context),
              format_flops(m.flops_per_token_decode).c_str());
  std::printf("FLOPs/token, prefill of %lld tokens:  %s\n", static_cast<long long>(o.context),
              format_flops(m.flops_per_token_prefill).c_str());
  std::printf("decode state at context %lld (%s activations, batch 1):  %s\n", static_cast<long long>(o.context),
              o.dtype.c_str(), format_bytes(static_cast<double>(m.state_bytes)).c_str());
}

void add_show(CLI::App& arch) {
  auto o = std::make_shared<ShowOptions>();
  auto* cmd = arch.add_subcommand("show", "Parameters, FLOPs/token and decode-state bytes of an ArchSpec, per sublayer");
  cmd->add_option("file", o->file, "ArchSpec JSON file")->required();
  cmd->add_option("--context", o->context, "Context length t (tokens) for FLOPs and state bytes")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--dtype", o->dtype, "Activation dtype for state bytes: float32, bfloat16, float64")
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "Print one JSON object instead of the table");
  cmd->callback([o] {
    const auto dt = parse_dtype(o->dtype);
    const ArchSpec spec = ArchSpec::load(o->file);
    const ModelAccount m = account(spec, o->context, dtype_bytes(dt));
    if (o->json) {
      std::cout << account_json(spec, m, dtype_name(dt)).dump(2) << "\n";
    } else {
      print_table(spec, m, *o);
    }
  });
}

void add_canon(CLI::App& arch) {
  auto file = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto* cmd = arch.add_subcommand("canon", "Validate an ArchSpec and print its canonical form and hash");
  cmd->add_option("file", *file, "ArchSpec JSON file")->required();
  cmd->add_option("--out", *out, "Write the canonical form to this file (atomically) instead of stdout");
  cmd->callback([file, out] {
    const ArchSpec spec = ArchSpec::load(*file);
    if (out->empty()) {
      std::cout << spec.to_json().dump(2) << "\n";
    } else {
      spec.save(*out);
    }
    std::cerr << "hash " << spec.hash() << "\n";
  });
}

void add_ops(CLI::App& arch) {
  auto as_json = std::make_shared<bool>(false);
  auto* cmd = arch.add_subcommand("ops", "List the registered operators with their default hyperparameters");
  cmd->add_flag("--json", *as_json, "Print JSON");
  cmd->callback([as_json] {
    std::cout << (*as_json ? describe_op_kinds().dump(2) + "\n" : op_kinds_text());
  });
}

}  // namespace

void add_arch_command(CLI::App& app) {
  auto* arch = app.add_subcommand("arch", "Inspect architectures: show, canon, ops");
  arch->require_subcommand(1);
  add_show(*arch);
  add_canon(*arch);
  add_ops(*arch);
}

}  // namespace flashnas::cli
