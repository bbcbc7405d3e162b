#include "search/runner.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "common/error.h"
#include "common/files.h"
#include "common/fault.h"
#include "common/stop.h"
#include "common/format.h"
#include "common/version.h"
#include "profiler/measure.h"
#include "search/evolution.h"
#include "search/fidelity.h"
#include "search/baselines.h"
#include "study/heartbeat.h"
#include "search/plan.h"
#include "search/pricer.h"
#include "search/rng.h"
#include "search/study_worker.h"
#include "supernet/accounting.h"
#include "train/checkpoint.h"
#include "train/task_eval.h"
#include "train/trainer.h"
#include "train/training_data.h"

namespace flashnas {
namespace fs = std::filesystem;
namespace {

std::string host_name() {
  char buf[256] = {0};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

// Field 22 of /proc/<pid>/stat: start time in clock ticks since boot; "" when
// gone, or exited and not yet reaped (a zombie: state Z or X, field 3). A
// worker that died of an error stays a zombie until its parent waits for it,
// and its trial must be taken back before that.
std::string start_time(const std::string& pid) {
  std::ifstream in("/proc/" + pid + "/stat");
  std::string line;
  if (!std::getline(in, line)) return "";
  const auto close = line.rfind(')');
  if (close == std::string::npos) return "";
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 3 && (field == "Z" || field == "X")) return "";
  }
  return field;
}

// The inode of this process's PID namespace ("pid:[4026531836]"): PIDs
// are only comparable within one.
std::string pid_namespace() {
  std::error_code ec;
  const auto link = fs::read_symlink("/proc/self/ns/pid", ec).string();
  const auto open = link.find('['), close = link.find(']');
  if (ec || open == std::string::npos || close == std::string::npos) return "0";
  return link.substr(open + 1, close - open - 1);
}

std::vector<std::string> split(const std::string& s, char c) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, c);) out.push_back(x);
  return out;
}

void check_lut_covers(const SearchConfig& cfg, const LutStore& lut, int64_t device, const fs::path& lut_db) {
  std::vector<Workload> ws;
  for (const auto& b : cfg.budgets) ws.push_back(b.workload);
  const auto plan = plan_entries(cfg.space.grid_archs(), ws, cfg.dtype, cfg.runtime);
  int64_t missing = 0;
  std::string first;
  for (const auto& k : plan) {
    if (!lut.get(device, k)) {
      if (missing++ == 0) first = k.describe();
    }
  }
  if (missing > 0) {
    throw InputError(lut_db.string() + ": the latency table lacks " + std::to_string(missing) + " of the " +
                     std::to_string(plan.size()) + " entries this space and its budgets need (first: " + first +
                     "); run flashnas profile --space " + cfg.source + " --db " + lut_db.string());
  }
}

// The table's verdict for this search's budgets (profiler/finalize.h): a
// table judged unreliable for a budget's workload, or never validated, is
// refused unless the user accepts it. Returns what the study records.
json lut_verdict(const SearchConfig& cfg, const LutTable& table, const LutStore& lut, int64_t device,
                 const fs::path& lut_db, bool accept, const std::function<void(const std::string&)>& log) {
  const json& rep = table.report;
  json info = {{"db", is_database_url(lut_db.string()) ? lut_db.string() : fs::absolute(lut_db).string()},
               {"device", lut.device_info(device).value("fingerprint", "")},
               {"dtype", cfg.dtype},
               {"runtime", cfg.runtime},
               {"accepted_unreliable", false}};
  std::vector<std::string> problems;
  json per_budget = json::array();
  for (const auto& b : cfg.budgets) {
    std::string status = "unvalidated";
    std::string why = "the table was never validated (run flashnas profile --space CONFIG --validate 20)";
    if (!rep.is_null()) {
      for (const auto& v : rep["verdict"]["workloads"]) {
        if (v["workload"] != b.workload.str()) continue;
        status = v["status"].get<std::string>();
        why.clear();
        for (const auto& r : v["reasons"]) why += (why.empty() ? "" : "; ") + r.get<std::string>();
      }
      if (status == "unvalidated") why = "the table's validation does not cover workload " + b.workload.str();
    }
    per_budget.push_back({{"budget", b.name}, {"workload", b.workload.str()}, {"status", status}});
    if (status == "unreliable" || status == "unvalidated") problems.push_back(b.name + " (" + status + "): " + why);
    if (status == "limited") log("search: the latency table is limited by this machine's measurement spread for " + b.name);
  }
  info["budgets"] = per_budget;
  if (!rep.is_null()) {
    info["verdict"] = rep["verdict"]["status"];
    info["created_at"] = rep.value("created_at", "");
    info["finalized_by"] = rep.value("finalized_by", "");
  }
  const std::string me = git_commit();
  for (const auto& c : table.commits) {
    if (c != me) log("search: the latency table was measured by flashnas " + c + ", this build is " + me);
  }
  info["measured_by"] = std::vector<std::string>(table.commits.begin(), table.commits.end());
  if (!problems.empty()) {
    if (!accept) {
      throw InputError(lut_db.string() + ": the latency table is not reliable for this search's budgets: " +
                       join_comma(problems) + ". Profile again as the verdict says, or pass --accept-unreliable-lut "
                       "to search with it anyway (the study records that you did)");
    }
    info["accepted_unreliable"] = true;
    log("search: using a latency table judged unreliable (--accept-unreliable-lut): " + join_comma(problems));
  }
  return info;
}

// search.seed_baselines: the hand designs the space holds, sized to every
// budget on the table, join search.init (the population grows to hold them);
// those the space cannot hold are named in the log.
void seed_hand_designs(SearchConfig& cfg, const LutTable& table, const std::function<void(const std::string&)>& log) {
  // The same designs for every worker: the table and the space decide them.
  Pricer seed_pricer(cfg, table);
  std::vector<std::string> added, outside;
  for (const auto& g : baseline_seeds(cfg.space, cfg.budgets,
                                      [&](const ArchSpec& a, size_t b) { return seed_pricer.latencies(a).at(b); },
                                      &outside)) {
    if (std::find(cfg.search.init.begin(), cfg.search.init.end(), g) != cfg.search.init.end()) continue;
    cfg.search.init.push_back(g);
    added.push_back(g);
  }
  std::string list;
  for (const auto& g : added) list += (list.empty() ? "" : "; ") + g;
  log("search: the initial population starts from " + std::to_string(added.size()) + " hand designs (search.seed_baselines)" +
      (list.empty() ? "" : ": " + list));
  if (!outside.empty()) {
    std::string names;
    for (const auto& o : outside) names += "\n  " + o;
    log("search: " + std::to_string(outside.size()) +
        " hand design(s) sized to the budgets are outside the space, so the search can never return them, "
        "yet a comparison judges the pick against them (grow space.max_operators or blocks_per_stage to hold them):" +
        names);
  }
  // Every budget's designs are seeded, not just the first budget's: a
  // population too small to hold them grows (the search must see the
  // designs it is judged against).
  if (int(cfg.search.init.size()) > cfg.search.population) {
    log("search: the initial population grows from " + std::to_string(cfg.search.population) + " to " +
        std::to_string(cfg.search.init.size()) + " to hold every seeded design");
    cfg.search.population = int(cfg.search.init.size());
  }
}

// Budgets no architecture can meet are an input error, found before the
// study is created: random draws priced from the LUT, none trained.
void check_budgets_meetable(const SearchConfig& cfg, Pricer& pricer) {
  Rng probe(cfg.search.seed ^ 0xfea51b1e5eedULL);
  double best_ms = INFINITY;
  std::string best;
  for (int i = 0; i < cfg.search.max_attempts; ++i) {
    const Priced p = pricer.price(cfg.space.random(probe));
    if (p.arch) return;
    if (p.ms.at(0) < best_ms) {
      best_ms = p.ms.at(0);
      best = cfg.space.genome_text(p.genome) + ": " + p.reason;
    }
  }
  throw InputError(cfg.source + ": no architecture in " + std::to_string(cfg.search.max_attempts) +
                   " random draws meets the budgets and constraints; the fastest was " + best +
                   ". Loosen the budgets, or add smaller widths or structures to the space");
}

}  // namespace

std::string worker_identity() {
  const std::string pid = std::to_string(getpid());
  return host_name() + ":" + pid + ":" + start_time(pid) + ":" + pid_namespace();
}

bool worker_alive(const std::string& id) {
  const auto parts = split(id, ':');
  if (parts.size() != 3 && parts.size() != 4) return false;
  // Another machine's worker, or one in another process namespace (a
  // container with the same host name): not ours to judge; its lease says.
  if (parts[0] != host_name()) return true;
  if (parts.size() == 4 && parts[3] != pid_namespace()) return true;
  const std::string st = start_time(parts[1]);
  return !st.empty() && st == parts[2];
}

fs::path trial_dir(const fs::path& root, const std::string& study, int64_t number) {
  return root / study / ("trial-" + std::to_string(number));
}

SearchSummary run_search(const SearchConfig& cfg_in, const SearchOptions& o,
                         const std::function<void(const std::string&)>& log) {
  SearchConfig cfg = cfg_in;  // with the hand designs seeded (search.seed_baselines)
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  check_path_name(o.study, "--study");  // it names the study's folder under DB.runs/
  const fs::path lut_db = o.lut_db.empty() ? o.db : o.lut_db;
  const fs::path runs_root = artifacts_root(o.db.string(), o.artifacts);
  if (!database_exists(lut_db.string())) {
    throw InputError(lut_db.string() + ": no such LUT database; run flashnas profile --space " + cfg.source + " --db " +
                     lut_db.string() + " first");
  }
  LutStore lut(lut_db, Access::read_only);
  const int64_t device = lut.find_device(o.lut_device);
  check_lut_covers(cfg, lut, device, lut_db);
  const LutTable table = LutTable::load(lut, device, cfg.dtype, cfg.runtime);
  const json lut_info = lut_verdict(cfg, table, lut, device, lut_db, o.accept_unreliable_lut, log);
  if (cfg.search.seed_baselines) seed_hand_designs(cfg, table, log);

  // Training data, loaded once per worker.
  const TrainingData data = open_training_data(cfg.data, cfg.recipe.val_fraction, cfg.recipe.seed,
                                               cfg.source + ": field \"train.data\"");
  const auto& tok = data.tokenizer;
  const auto& ds = data.dataset;
  if (tok->vocab_size() > cfg.space.vocab_size) {
    throw InputError(cfg.source + ": field \"space.vocab_size\": " + std::to_string(cfg.space.vocab_size) +
                     " is smaller than the data's vocabulary (" + std::to_string(tok->vocab_size()) + ")");
  }
  if (cfg.objective == "completion_bpb" && !ds->task()) {
    throw InputError(cfg.source + ": field \"train.objective\": \"completion_bpb\" needs task data, and " + cfg.data.string() +
                     " is plain text; prepare the records (.jsonl) with flashnas data prepare, or use objective = \"loss\"");
  }
  const Rungs rungs(cfg);
  check_rungs_fit(cfg, rungs, *ds);
  // Task data: the held-out records each trained model completes for its task metrics.
  std::vector<TaskRecord> task_eval;
  if (ds->task() && cfg.task_eval_records > 0) {
    std::vector<int64_t> docs = ds->val_docs();
    docs.resize(std::min<size_t>(docs.size(), size_t(cfg.task_eval_records)));
    task_eval = task_records(*data.file, docs);
  }
  Pricer pricer(cfg, table);
  check_budgets_meetable(cfg, pricer);
  const WorkerInputs in{cfg, o, rungs, pricer, data, task_eval, runs_root, log};
  StudyWorker worker(in, device, lut_info, t0);
  if (o.create_only) {
    SearchSummary created;
    created.wall_s = std::chrono::duration<double>(StudyWorker::Clock::now() - t0).count();
    return created;
  }
  return worker.run();
}

json SearchTimes::to_json(double wall_s) const {
  return json{{"train_s", train_s}, {"task_s", task_s}, {"plan_s", plan_s}, {"db_s", db_s}, {"idle_s", idle_s},
              {"other_s", wall_s - train_s - task_s - plan_s - db_s - idle_s}, {"overhead_s", overhead_s(wall_s)},
              {"overhead_fraction", wall_s > 0 ? overhead_s(wall_s) / wall_s : 0.0}};
}

std::string SearchTimes::describe(double wall_s) const {
  const double w = wall_s > 0 ? wall_s : 1;
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "training %.1f%%, task metrics %.1f%%, proposing %.1f%%, database %.1f%%, waiting %.1f%%, other %.1f%%: "
                "overhead %.1f%% of %.0f s",
                100 * train_s / w, 100 * task_s / w, 100 * plan_s / w, 100 * db_s / w, 100 * idle_s / w,
                100 * (wall_s - train_s - task_s - plan_s - db_s - idle_s) / w, 100 * overhead_s(wall_s) / w, wall_s);
  return buf;
}

void create_study_tables(const std::string& db) { StudyStore(db, Access::create); }

WorkerSetup worker_setup(const std::string& db, const std::string& study, const fs::path& artifacts, bool check_data) {
  if (!database_exists(db)) throw InputError(db + ": no such study database");
  StudyRow row;
  {
    StudyStore store(db, Access::read_only);
    row = store.get_study(study);
  }
  const std::string where = db + ": study \"" + study + "\"";
  WorkerSetup w{SearchConfig::from_json(row.config, where + ", column config"), SearchOptions{}};
  std::error_code ec;
  if (check_data && !fs::exists(w.cfg.data, ec)) {
    throw InputError(where + ": its training data " + w.cfg.data.string() + " is not here" +
                     (w.cfg.data.is_relative() ? " (a relative path, read from the current folder " + fs::current_path().string() +
                                                     "; start the worker in the folder the study was created from)"
                                               : "; every worker needs it at the same path (a shared filesystem)"));
  }
  SearchOptions& o = w.opts;
  o.db = db;
  o.study = study;
  o.artifacts = artifacts_root(db, artifacts);
  const json& lut = row.lut_table;
  o.lut_db = lut.value("db", db);
  o.lut_device = lut.value("device", "");
  o.accept_unreliable_lut = lut.value("accepted_unreliable", false);
  return w;
}

}  // namespace flashnas
