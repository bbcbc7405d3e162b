#include "tests/search_fixture.h"

#include "common/db.h"
#include "common/toml_io.h"
#include "profiler/lut.h"
#include "profiler/measure.h"
#include "search/fidelity.h"
#include "study/study_store.h"

namespace flashnas::test {

// A tiny staged space; trains in well under a second per candidate.
std::string tiny_config(const std::string& data, const std::string& extra_search, const std::string& budget,
                        const std::string& mixers) {
  return R"(
[space]
kind = "staged"
widths = [16, 32]
width = "gene"
mixers = )" + mixers + R"(
ffn_per_mixer = [0, 1]
stages = 3
blocks_per_stage = [1, 2]
max_operators = 8
[space.ops.swa]
n_heads = "d_model / 16"
n_kv_heads = 1
window = 16
[space.ops.mamba2]
expand = 2
head_dim = 16
d_state = 8
[space.ops.deltanet]
n_heads = "d_model / 16"
[space.ops.ffn]
d_ff = "2 * d_model"

[[budgets]]
name = "call"
workload = "batch=1,prompt=16,generate=8"
)" + budget + R"(

[train]
data = ")" + data + R"("
tokens = 1024
batch_size = 2
seq_len = 32
eval_interval = 0
eval_batches = 2
threads = 1

[search]
population = 4
sample = 2
offspring = 2
trials = 8
seed = 3
)" + extra_search + "\n";
}

void replace_once(std::string& s, const std::string& from, const std::string& to) {
  const auto pos = s.find(from);
  ASSERT_NE(pos, std::string::npos) << from;
  s.replace(pos, from.size(), to);
}

SearchConfig parse_config(const std::string& toml) { return SearchConfig::from_json(parse_toml(toml, "t.toml"), "t.toml"); }

// A synthetic LUT holding every entry the config's space and budgets need:
// cost grows with width and (for attention-like ops) with context.
// With `verdict`, the table carries a profile report judging every budget's
// workload so (as flashnas profile --validate writes it).
void synthetic_lut(const SearchConfig& cfg, const std::filesystem::path& db, bool drop_one, const std::string& verdict) {
  LutStore lut(db, true);
  DeviceInfo info;
  info.device = "cpu";
  info.name = "synthetic";
  info.threads = 1;
  info.torch_version = "test";
  const int64_t dev = lut.add_device(info);
  std::vector<Workload> ws;
  for (const auto& b : cfg.budgets) ws.push_back(b.workload);
  auto plan = plan_entries(cfg.space.grid_archs(), ws, cfg.dtype, cfg.runtime);
  if (drop_one) plan.pop_back();
  for (const auto& k : plan) {
    TimingStats s;
    const double us = double(k.d_model) * (k.phase == Phase::Prefill ? 4.0 : 1.0) * (k.op == "ffn" ? 0.5 : 1.0) +
                      (k.op == "swa" ? 0.01 * double(k.length) : 0.0);
    s.median_us = s.p10_us = s.p90_us = s.mean_us = s.min_us = us;
    s.count = 1;
    s.samples_us = {us};
    lut.put(dev, k, s, 1);
  }
  if (verdict.empty()) return;
  json ws_json = json::array();
  for (const auto& w : ws) ws_json.push_back({{"workload", w.str()}, {"status", verdict}, {"reasons", json::array({"synthetic"})}});
  lut.set_table_report(dev, cfg.dtype, cfg.runtime,
                       json{{"probe", {{"reference_index_us", 0}}},
                            {"validation", json::array()},
                            {"verdict", {{"status", verdict}, {"workloads", ws_json}}}});
}

// A small corpus prepared as a token file (byte-level).
std::filesystem::path tiny_data(const TempDir& dir) { return test::tiny_token_file(dir); }


Study::Study(const std::string& extra_search, const std::string& budget, bool drop_lut_entry, const std::string& verdict,
             const std::string& db_url) {
  const auto data = tiny_data(dir);
  config = (dir / "space.toml").string();
  db = db_url.empty() ? (dir / "study.db").string() : db_url;
  if (!db_url.empty()) artifacts = (dir / "runs").string();
  const std::string toml = tiny_config(data.string(), extra_search, budget);
  dir.write("space.toml", toml);
  synthetic_lut(parse_config(toml), db, drop_lut_entry, verdict);
}

std::vector<std::string> Study::search_args(const std::string& study) const {
  std::vector<std::string> a = {"search", "--config", config, "--db", db, "--study", study, "--threads", "1"};
  if (!artifacts.empty()) a.insert(a.end(), {"--artifacts", artifacts});
  return a;
}

int64_t scalar(const std::string& db, const std::string& sql) {
  Db d(db, false);
  Stmt q(d, sql);
  EXPECT_TRUE(q.step()) << sql;
  return q.int64(0);
}


void expect_two_worker_rung_study(const Study& st) {
  auto args = st.search_args();
  args.insert(args.end(), {"--workers", "2"});
  const auto r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const SearchConfig cfg = SearchConfig::load(st.config);
  StudyStore store(st.db, false);
  const auto trials = store.trials(store.get_study("s").id);
  EXPECT_LE(tokens_committed(Rungs(cfg), trials), cfg.search.token_budget);
  // Which candidates the two workers draw depends on which finishes first,
  // so one may diverge at a rung (a candidate's own failure, recorded with
  // its reason); nothing else may fail.
  for (const auto& t : trials) {
    for (const auto& x : t.rungs) {
      EXPECT_TRUE(x.status == "done" || (x.status == "failed" && x.reason.rfind("training diverged", 0) == 0))
          << "trial " << t.number << " rung " << x.rung << " " << x.status << ": " << x.reason << "\n" << r.err;
    }
  }
  EXPECT_GE(scalar(st.db, "SELECT COUNT(*) FROM trial_rungs WHERE rung = 2"), 1);
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(DISTINCT worker) FROM trial_rungs"), 2) << "both processes trained";
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(DISTINCT hash) FROM trials WHERE slot IS NOT NULL AND reused_from IS NULL"),
            scalar(st.db, "SELECT COUNT(*) FROM trials WHERE slot IS NOT NULL AND reused_from IS NULL"));
}

}  // namespace flashnas::test
