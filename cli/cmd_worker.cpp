// `flashnas worker`: a stateless search worker for a cluster's scheduler. It
// reads everything from the study (config, latency table), trains trials
// until the study is complete, and exits 0; SIGTERM (preemption) ends the
// training step, gives the trial back and exits 143.
#include <cstdio>

#include "cli/commands.h"
#include "cli/study_options.h"
#include "common/error.h"
#include "common/stop.h"
#include "common/threads.h"
#include "search/runner.h"

namespace flashnas::cli {

void add_worker_command(CLI::App& app) {
  struct Opts {
    std::string db, study, artifacts;
    int threads = 0;
    double lease_s = 60, db_retry_s = 300;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("worker", "Work on an existing study until it is complete (one of many workers, on any host)");
  cmd->add_option("--db", o->db, "The study database: postgresql://user@host:port/dbname (or a SQLite file on this host)")
      ->required();
  cmd->add_option("--study", o->study, "The study (made by flashnas study create or flashnas search)")->required();
  cmd->add_option("--artifacts", o->artifacts, "Shared folder for the trials' runs (required with PostgreSQL)");
  cmd->add_option("--threads", o->threads, "Training threads (0: this machine's cores)")->capture_default_str();
  add_lease_options(*cmd, o->lease_s, o->db_retry_s);
  cmd->callback([o] {
    const StopSignals stop_on_signals;
    WorkerSetup w = worker_setup(o->db, o->study, o->artifacts);
    w.opts.threads = threads_per_worker(o->threads, 1, "--threads");
    w.opts.lease_s = o->lease_s;
    w.opts.db_retry_s = o->db_retry_s;
    std::fprintf(stderr, "worker %s: study \"%s\" in %s\n", worker_identity().c_str(), o->study.c_str(), o->db.c_str());
    const SearchSummary s = run_search(w.cfg, w.opts, [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
    std::printf("worker: study \"%s\" complete%s%s; this worker trained %lld, promoted %lld, failed %lld, reused %lld, pruned %lld in %.0f s\n",
                o->study.c_str(), s.stop_reason.empty() ? "" : ": ", s.stop_reason.c_str(), static_cast<long long>(s.trained),
                static_cast<long long>(s.promoted), static_cast<long long>(s.failed), static_cast<long long>(s.reused),
                static_cast<long long>(s.pruned), s.wall_s);
    std::printf("worker: time: %s\n", s.times.describe(s.wall_s).c_str());
  });
}

}  // namespace flashnas::cli
