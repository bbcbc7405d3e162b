// `flashnas study create|copy|status`: make a study without training (for
// workers to join), copy studies between databases, and show a study's
// trials and the leases in flight.
#include <cstdio>
#include <iostream>
#include <map>

#include "cli/commands.h"
#include "cli/study_options.h"
#include "common/error.h"
#include "search/config.h"
#include "search/runner.h"
#include "study/study_copy.h"

namespace flashnas::cli {

void add_study_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("study", "Create, copy or inspect studies");
  cmd->require_subcommand(1);
  {
    struct Opts {
      std::string config;
      StudyOptions st;
    };
    auto o = std::make_shared<Opts>();
    auto* c = cmd->add_subcommand("create", "Check a search config against its latency table and create the study, training nothing");
    c->add_option("--config", o->config, "Search config (TOML)")->required();
    o->st.add_to(*c);
    c->callback([o] {
      const SearchConfig cfg = SearchConfig::load(o->config);
      SearchOptions so = o->st.apply();
      so.create_only = true;
      run_search(cfg, so, [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
      std::printf("study \"%s\" is ready in %s; start workers with: flashnas worker --db %s --study %s --artifacts %s\n",
                  so.study.c_str(), o->st.db.c_str(), o->st.db.c_str(), so.study.c_str(), so.artifacts.string().c_str());
    });
  }
  {
    struct Opts {
      std::string src, dst, from_artifacts, artifacts;
      std::vector<std::string> studies;
    };
    auto o = std::make_shared<Opts>();
    auto* c = cmd->add_subcommand("copy", "Copy studies (with their latency table) into a new or empty database, e.g. SQLite to PostgreSQL");
    c->add_option("SRC", o->src, "Source database (file or postgresql:// URL)")->required();
    c->add_option("DST", o->dst, "Destination: a new SQLite file or an empty database")->required();
    c->add_option("--study", o->studies, "A study to copy (repeatable; default: all)");
    c->add_option("--from-artifacts", o->from_artifacts, "The source's run folders (default: SRC.runs for a file)");
    c->add_option("--artifacts", o->artifacts, "Where the copy's run folders go (required with a PostgreSQL DST)");
    c->callback([o] {
      const std::string from = o->from_artifacts.empty() && !is_database_url(o->src) ? o->src + ".runs" : o->from_artifacts;
      const std::string to = artifacts_root(o->dst, o->artifacts).string();
      const CopyReport r = copy_studies(o->src, o->dst, o->studies, from, to);
      std::printf("copied %zu studies to %s:", r.studies.size(), o->dst.c_str());
      for (const auto& [table, n] : r.rows) std::printf(" %s %lld,", table.c_str(), static_cast<long long>(n));
      std::printf(" %lld run files%s\n", static_cast<long long>(r.artifact_files),
                  r.lut ? "; the latency table came along" : "; the studies keep their latency table where it was");
    });
  }
  {
    struct Opts {
      std::string db, study;
      bool json_out = false;
    };
    auto o = std::make_shared<Opts>();
    auto* c = cmd->add_subcommand("status", "A study's trials by status, and the work in flight with its lease");
    c->add_option("--db", o->db, "Study database")->required();
    c->add_option("--study", o->study, "Study name")->required();
    c->add_flag("--json", o->json_out, "Print JSON");
    c->callback([o] {
      const StudyStatus s = study_status(o->db, o->study);
      if (o->json_out) {
        std::cout << s.to_json().dump(2) << "\n";
        return;
      }
      std::printf("study \"%s\": %s;", o->study.c_str(), s.finished ? "complete" : "not complete");
      for (const auto& [status, n] : s.by_status) std::printf(" %s %lld", status.c_str(), static_cast<long long>(n));
      std::printf("\n");
      for (const auto& f : s.in_flight) {
        std::printf("  trial %lld rung %d: %s, lease %s %.0f s\n", static_cast<long long>(f.trial_number), f.rung,
                    f.worker.c_str(), f.seconds_left >= 0 ? "expires in" : "expired", std::abs(f.seconds_left));
      }
    });
  }
}

}  // namespace flashnas::cli
