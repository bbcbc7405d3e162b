// `flashnas proxy`: rank agreement of short and long training (search/proxy.h).
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "common/error.h"
#include "search/proxy.h"

namespace flashnas::cli {

void add_proxy_command(CLI::App& app) {
  struct Opts {
    std::string config, table;
    ProxyOptions p;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("proxy", "Check how well short training ranks architectures: train N at two budgets");
  cmd->add_option("--config", o->config, "Search config (TOML): the space, data and training recipe");
  cmd->add_option("--db", o->p.db, "Database for the runs and the report (resumable): a SQLite file, or a postgresql:// URL");
  cmd->add_option("--artifacts", o->p.artifacts, "Folder for the runs (default: DB.runs; required with a PostgreSQL --db)");
  cmd->add_option("--table", o->table,
                  "Compare two rungs of a bench table (flashnas bench-table --csv) instead of training; no --config or --db");
  cmd->add_option("--archs", o->p.archs, "Architectures to train (>= 4)")->capture_default_str();
  cmd->add_option("--short", o->p.short_tokens, "Short training, in tokens")->required();
  cmd->add_option("--long", o->p.long_tokens, "Long training, in tokens (more than --short)")->required();
  cmd->add_option("--study", o->p.study, "Take the architectures from this study's trained trials (in --db)");
  cmd->add_option("--name", o->p.name, "Name of this experiment in the database")->capture_default_str();
  cmd->add_option("--threads", o->p.threads, "Training threads (0: the config's)")->capture_default_str();
  cmd->add_option("--seed", o->p.seed, "Seed for drawing architectures and for the bootstrap")->capture_default_str();
  cmd->add_flag("--json", o->json, "Print the report as JSON");
  cmd->callback([o] {
    ProxyReport r;
    if (!o->table.empty()) {
      if (!o->config.empty() || !o->p.db.empty()) throw InputError("--table: compares a table's rungs; drop --config and --db");
      r = proxy_from_table(o->table, o->p.short_tokens, o->p.long_tokens, o->p.seed);
    } else {
      if (o->config.empty()) throw InputError("--config: required (or --table to compare a bench table's rungs)");
      if (o->p.db.empty()) throw InputError("--db: required (or --table to compare a bench table's rungs)");
      const SearchConfig cfg = SearchConfig::load(o->config);
      r = run_proxy(cfg, o->p, [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
    }
    if (o->json) {
      std::cout << r.to_json().dump(2) << "\n";
      return;
    }
    std::printf("proxy fidelity, %d architectures (%d failed), %lld vs %lld tokens:\n", r.n, r.failed,
                static_cast<long long>(o->p.short_tokens), static_cast<long long>(o->p.long_tokens));
    std::printf("  Spearman rho %.3f (90%% interval %.3f..%.3f); the paper: 0.888 (short vs full training)\n",
                r.spearman.value, r.spearman.lo, r.spearman.hi);
    std::printf("  Kendall tau-b %.3f (90%% interval %.3f..%.3f)\n", r.kendall.value, r.kendall.lo, r.kendall.hi);
    std::printf("  top-%d overlap %.0f%%\n", r.k, 100 * r.top_k_overlap);
  });
}

}  // namespace flashnas::cli
