#include "search/search_command.h"

#include "common/error.h"
#include "common/stop.h"
#include "study/workers.h"

namespace flashnas {
namespace {

// The config `c` names with its overrides applied (InputError as SearchConfig::load).
SearchConfig search_command_config(const SearchCommand& c) {
  SearchConfig cfg = SearchConfig::load(c.config);
  if (c.algorithm.empty() && c.seed < 0) return cfg;
  json doc = cfg.doc;
  if (!c.algorithm.empty()) doc["search"]["algorithm"] = c.algorithm;
  if (c.seed >= 0) doc["search"]["seed"] = c.seed;
  return SearchConfig::from_json(doc, c.config.string());
}

}  // namespace

SearchCommandResult run_search_command(const SearchCommand& c, const std::function<void(const std::string&)>& log) {
  if (c.workers < 1) throw InputError("--workers: must be >= 1");
  const SearchConfig cfg = search_command_config(c);
  const bool child = c.parent > 0;
  if (child) WorkerProcesses::die_with_parent(c.parent);
  const std::string db = c.options.db.string();
  if (!child) {
    std::string head = "search: study \"" + c.options.study + "\" in " + db + ": " + cfg.describe();
    if (head.back() == '\n') head.pop_back();  // the log adds its own
    log(head);
  }
  // Extra workers: this binary again, one process each, with the same study and threads.
  std::vector<std::string> args = {"search", "--config", c.config.string(), "--db", db, "--study", c.options.study,
                                   "--threads", std::to_string(c.options.threads)};
  args.insert(args.end(), c.repeat.begin(), c.repeat.end());
  if (!c.algorithm.empty()) args.insert(args.end(), {"--algorithm", c.algorithm});
  if (c.seed >= 0) args.insert(args.end(), {"--seed", std::to_string(c.seed)});
  if (!child && c.workers > 1) create_study_tables(db);
  WorkerProcesses workers(args, child ? 0 : c.workers - 1);
  SearchCommandResult r;
  try {
    r.worker = run_search(cfg, c.options, log);
  } catch (const Stopped& e) {
    workers.stop(e.signal());  // each stops at its own safe point; this one waits for them
    throw;
  }
  const int failed_children = workers.wait();
  if (child) return r;
  if (failed_children > 0) throw Error("search: " + std::to_string(failed_children) + " worker process(es) failed");
  r.frontier = frontier_report(cfg, db, c.options.study);
  return r;
}

json SearchCommandResult::to_json() const {
  json j = frontier ? frontier->to_json() : json::object();
  const SearchSummary& s = worker;
  j["worker"] = {{"trained", s.trained}, {"failed", s.failed}, {"reused", s.reused}, {"pruned", s.pruned},
                 {"wall_s", s.wall_s}, {"times", s.times.to_json(s.wall_s)}};
  return j;
}

std::string SearchCommandResult::text() const {
  std::string t;
  if (!worker.stop_reason.empty()) t += "search stopped early: " + worker.stop_reason + "\n";
  t += "this worker's time: " + worker.times.describe(worker.wall_s) + "\n";
  if (frontier) t += frontier->summary() + frontier->table();
  return t;
}

}  // namespace flashnas
