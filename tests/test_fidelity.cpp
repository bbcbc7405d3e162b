// Multi-fidelity search (search/fidelity.h): rung configs and their errors,
// asynchronous successive halving through the CLI, a promotion equal bit for
// bit to a run planned for its rung, kill -9 in the middle of a promotion,
// and the migration of version-2 study files.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <utility>

#include "common/files.h"
#include "common/db.h"
#include "search/config.h"
#include "profiler/validate.h"
#include "search/fidelity.h"
#include "search/proxy.h"
#include "search/runner.h"
#include "study/study_store.h"
#include "tests/search_fixture.h"
#include "train/training_data.h"
#include "train/trainer.h"

namespace flashnas {
namespace {

namespace fs = std::filesystem;
using test::run_cli;
using test::scalar;
using test::Study;

// Rungs of 4, 12 and 36 steps of 64 tokens; the study may spend what 8
// one-fidelity candidates of 1024 tokens would.
const std::string kRungs = "fidelities = [256, 768, 2304]\neta = 2\n";

// Every rung result of a study: (trial number, rung) -> loss.
std::map<std::pair<int64_t, int>, double> rung_losses(const std::string& db) {
  StudyStore store(db, false);
  std::map<std::pair<int64_t, int>, double> out;
  for (const auto& t : store.trials(store.get_study("s").id)) {
    for (const auto& x : t.rungs) {
      if (x.status == "done") out[{t.number, x.rung}] = x.loss;
    }
  }
  return out;
}

TEST(Fidelity, RungsCostsAndTheBudget) {
  Study st(kRungs);
  const SearchConfig cfg = SearchConfig::load(st.config);
  const Rungs rungs(cfg);
  ASSERT_TRUE(rungs.multi());
  EXPECT_EQ(rungs.count(), 3);
  EXPECT_EQ(rungs.recipe(2).schedule, "wsd");
  EXPECT_EQ(rungs.recipe(0).warmup_tokens, 64);  // 5% of rung 0's 4 steps, at least one step
  EXPECT_EQ(rungs.recipe(2).warmup_steps(), 1);
  EXPECT_EQ(rungs.cost(0), 256);
  EXPECT_EQ(rungs.cost(1), 768 - 3 * 64);   // from rung 0's stable end (step 3)
  EXPECT_EQ(rungs.cost(2), 2304 - 10 * 64); // from rung 1's stable end (step 10)
  EXPECT_EQ(cfg.search.token_budget, 8 * 1024);
}

TEST(Fidelity, BadRungsNameTheFieldExitTwoAndWriteNothing) {
  struct Case {
    std::string search, expect;
  };
  const std::vector<Case> cases = {
      {"fidelities = [256, 256, 2304]\n", "field \"search.fidelities[1]\": rungs must increase"},
      {"fidelities = [256, 768, 512]\n", "field \"search.fidelities[2]\": rungs must increase"},
      {"fidelities = [200, 256]\n", "rungs must increase: 256 tokens (4 steps of 64 tokens) after 200 (4 steps)"},
      {"fidelities = [256]\n", "field \"search.fidelities\": give at least two rungs"},
      {"fidelities = [256, -768]\n", "field \"search.fidelities[1]\": must be a positive number of tokens"},
      {"fidelities = [256, 768]\neta = 1.5\n", "field \"search.eta\": must be a number >= 2"},
      {"eta = 3\n", "field \"search.eta\": only applies with fidelities"},
      {"finalists = 2\n", "field \"search.finalists\": only applies with fidelities"},
      {kRungs + "finalists = 0\n", "field \"search.finalists\": must be an integer in [1, "},
      {kRungs + "promote = \"all\"\nfinalists = 1\n", "field \"search.finalists\": does not apply with promote = \"all\""},
      // Two finalists cost 2 x (2304 - 640) tokens (from rung 1's stable end, step 10).
      {"fidelities = [256, 768, 2304]\ntoken_budget = 3500\nfinalists = 2\n",
       "field \"search.finalists\": 2 finalists at the top rung cost 3328 tokens, which leaves the rungs below 172 of the token "
       "budget's 3500, less than one candidate's 256"},
      {"fidelities = [256, 768, 100000000]\n",
       "field \"search.fidelities[2]\": 100000000 tokens is more than the training split of"},
  };
  for (const auto& c : cases) {
    Study st;  // the latency table is made for the valid config; [search] is the file's last table
    st.dir.write("space.toml", read_file(st.config) + c.search);
    const auto r = run_cli(st.search_args());
    EXPECT_EQ(r.exit_code, 2) << c.search << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.search << "\n" << r.err;
    EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'trials'"), 0) << "a study was written";
    EXPECT_FALSE(fs::exists(st.db + ".runs")) << c.search;
  }
  // A cosine schedule cannot be continued from rung to rung.
  Study st(kRungs);
  std::string text = read_file(st.config);
  test::replace_once(text, "eval_interval = 0", "eval_interval = 0\nschedule = \"cosine\"");
  st.dir.write("space.toml", text);
  const auto r = run_cli(st.search_args());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("field \"train.schedule\": multi-fidelity training"), std::string::npos) << r.err;
}

TEST(Fidelity, SuccessiveHalvingPromotesTheBestWithinTheBudget) {
  Study st(kRungs);
  auto r = run_cli(st.search_args());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("[promoted]"), std::string::npos) << r.err;
  const SearchConfig cfg = SearchConfig::load(st.config);
  const Rungs rungs(cfg);
  StudyStore store(st.db, false);
  const auto trials = store.trials(store.get_study("s").id);
  // The budget holds, and is nearly spent.
  const int64_t spent = tokens_committed(rungs, trials);
  EXPECT_LE(spent, cfg.search.token_budget);
  EXPECT_GT(spent, cfg.search.token_budget - rungs.cost(2));
  // Every promotion continued a trial that finished the rung below, and no
  // more than 1/eta of a rung moved up.
  int n[3] = {0, 0, 0};
  for (const auto& t : trials) {
    for (const auto& x : t.rungs) {
      EXPECT_EQ(x.status, "done") << "trial " << t.number << " rung " << x.rung;
      EXPECT_EQ(x.tokens, rungs.tokens(x.rung));
      ++n[x.rung];
      if (x.rung > 0) {
        EXPECT_TRUE(t.rung_row(x.rung - 1)) << t.number;
      }
    }
    if (!t.rungs.empty()) {
      EXPECT_EQ(t.rung, t.rungs.back().rung);
      EXPECT_EQ(t.loss, t.rungs.back().loss) << "a trial's loss is its highest rung's";
      EXPECT_EQ(store.curve(t.id).back().tokens, rungs.tokens(t.rung));
    }
  }
  EXPECT_GT(n[0], 8) << "cheap rungs evaluate more architectures than the one-fidelity study's 8";
  EXPECT_GE(n[1], 1);
  EXPECT_GE(n[2], 1);
  EXPECT_LE(n[1], n[0] / 2);
  EXPECT_LE(n[2], n[1] / 2);
  // Nothing is left behind but the stable states of trials not promoted further.
  for (const auto& t : trials) {
    const fs::path dir = trial_dir(st.db, "s", t.number);
    if (t.reused_from || t.status != "done") continue;
    EXPECT_FALSE(fs::exists(dir / "checkpoint")) << t.number;
    for (int k = 0; k < t.rung; ++k) EXPECT_FALSE(fs::exists(Trainer::stable_dir(dir, rungs.recipe(k)))) << t.number;
  }
  // The frontier compares the top rung only.
  r = run_cli({"frontier", "--db", st.db, "--study", "s", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json f = json::parse(r.out);
  EXPECT_EQ(f["rung"]["rung"], 2);
  EXPECT_EQ(f["rung"]["compared"], n[2]);
  EXPECT_EQ(f["rung"]["tokens"], 2304);
}

// With finalists, the top rung waits for every rung below and then takes the
// best of the rung below, as many as asked, within the budget kept for them.
TEST(Fidelity, FinalistsAreTheBestOfTheRungBelowOnceItIsDone) {
  Study st(kRungs + "finalists = 2\n");
  auto r = run_cli(st.search_args());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const SearchConfig cfg = SearchConfig::load(st.config);
  const Rungs rungs(cfg);
  EXPECT_EQ(finalists_reserve(cfg, rungs), 2 * rungs.cost(2));
  StudyStore store(st.db, false);
  const auto trials = store.trials(store.get_study("s").id);
  std::vector<std::pair<double, int64_t>> at_rung1;  // (loss at rung 1, trial number)
  std::vector<int64_t> finalists;
  int64_t below = 0;  // tokens the rungs below the top spent
  for (const auto& t : trials) {
    if (t.reused_from || !t.slot) continue;
    for (const auto& x : t.rungs) {
      EXPECT_EQ(x.status, "done") << "trial " << t.number << " rung " << x.rung;
      if (x.rung == 1) at_rung1.emplace_back(x.loss, t.number);
      if (x.rung == 2) finalists.push_back(t.number);
      if (x.rung < 2) below += rungs.cost(x.rung);
    }
  }
  ASSERT_GE(at_rung1.size(), 3u) << "the test needs more candidates at rung 1 than finalists";
  std::sort(at_rung1.begin(), at_rung1.end());
  std::sort(finalists.begin(), finalists.end());
  std::vector<int64_t> best{at_rung1[0].second, at_rung1[1].second};
  std::sort(best.begin(), best.end());
  EXPECT_EQ(finalists, best) << "the finalists are the two best of rung 1";
  EXPECT_LE(below, cfg.search.token_budget - 2 * rungs.cost(2)) << "the rungs below kept the finalists' reserve";
  EXPECT_GT(below, cfg.search.token_budget - 2 * rungs.cost(2) - rungs.cost(1)) << "and spent the rest";
  EXPECT_LE(tokens_committed(rungs, trials), cfg.search.token_budget);
  // One worker: no finalist started before every run below the top rung
  // had (rows are inserted when a run starts, so rowid is the start order).
  EXPECT_GT(scalar(st.db, "SELECT MIN(rowid) FROM trial_rungs WHERE rung = 2"),
            scalar(st.db, "SELECT MAX(rowid) FROM trial_rungs WHERE rung < 2"));
  // The frontier and the pick compare the finalists.
  r = run_cli({"frontier", "--db", st.db, "--study", "s", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json f = json::parse(r.out);
  EXPECT_EQ(f["rung"]["rung"], 2);
  EXPECT_EQ(f["rung"]["compared"], 2);
}

TEST(Fidelity, TwoWorkersShareARungedStudy) {
  Study st(kRungs);
  test::expect_two_worker_rung_study(st);
}

// Two workers, finalists: both may train a finalist, and no more than two
// reach the top rung, none before the rungs below are done.
TEST(Fidelity, TwoWorkersShareTheFinalists) {
  Study st(kRungs + "finalists = 2\n");
  test::expect_two_worker_rung_study(st);
  EXPECT_LE(scalar(st.db, "SELECT COUNT(*) FROM trial_rungs WHERE rung = 2"), 2);
  // A finalist starts only when nothing below the top is running, so every
  // run below had started (its row inserted) before the first finalist.
  EXPECT_GT(scalar(st.db, "SELECT MIN(rowid) FROM trial_rungs WHERE rung = 2"),
            scalar(st.db, "SELECT MAX(rowid) FROM trial_rungs WHERE rung < 2"));
}

TEST(Fidelity, APromotedCandidateEqualsOneTrainedStraightToItsRung) {
  Study st(kRungs);
  ASSERT_EQ(run_cli(st.search_args()).exit_code, 0);
  const SearchConfig cfg = SearchConfig::load(st.config);
  const Rungs rungs(cfg);
  StudyStore store(st.db, false);
  const TrialRow* top = nullptr;
  const auto trials = store.trials(store.get_study("s").id);
  for (const auto& t : trials) {
    if (t.rung == 2) top = &t;
  }
  ASSERT_TRUE(top) << "no trial reached rung 2";
  const TrainingData data = open_training_data(cfg.data, cfg.recipe.val_fraction, cfg.recipe.seed, "train.data");
  test::TempDir out;
  TrainRecipe straight = rungs.recipe(2);
  straight.threads = 1;
  Trainer t(ArchSpec::from_json(json::parse(top->arch), "trial"), data.dataset, data.tokenizer, straight, out.path());
  const TrainResult r = t.run(false);
  EXPECT_EQ(r.val_loss, top->loss_at(2)) << "bit for bit";
  const auto curve = store.curve(top->id, 2);
  ASSERT_EQ(curve.size(), r.curve.size());
  for (size_t i = 0; i < curve.size(); ++i) EXPECT_EQ(curve[i].train_loss, r.curve[i].train_loss) << i;
}

TEST(Fidelity, KilledInThePromotionResumesWithNothingLostOrRepeated) {
  Study ref(kRungs), st(kRungs);
  ASSERT_EQ(run_cli(ref.search_args()).exit_code, 0);
  // Killed (SIGKILL) after 3 steps of its first promotion.
  setenv("FLASHNAS_FAULT", "kill-in-promotion:3", 1);
  const auto killed = run_cli(st.search_args());
  unsetenv("FLASHNAS_FAULT");
  EXPECT_NE(killed.exit_code, 0);
  EXPECT_EQ(killed.err.find("error"), std::string::npos) << killed.err;
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM trial_rungs WHERE status = 'running' AND rung = 1"), 1)
      << "the promotion was in flight";
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM trial_rungs WHERE rung >= 1 AND status = 'done'"), 0);
  const auto r = run_cli(st.search_args());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The same study as the uninterrupted one: every rung of every trial, the same losses.
  EXPECT_EQ(rung_losses(st.db), rung_losses(ref.db));
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM trial_rungs WHERE status != 'done'"), 0);
}

std::vector<std::vector<std::string>> read_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> row;
    std::string cell;
    bool quoted = false;
    for (char c : line) {
      if (c == '"') quoted = !quoted;
      else if (c == ',' && !quoted) row.push_back(std::exchange(cell, ""));
      else cell += c;
    }
    row.push_back(cell);
    rows.push_back(row);
  }
  return rows;
}

TEST(BenchTable, EveryArchitectureAtEveryRungResumableAndWrittenAsCsv) {
  Study st;
  const std::string csv = (st.dir / "table.csv").string();
  const std::vector<std::string> args = {"bench-table", "--config", st.config, "--db",  st.db,  "--archs", "5",
                                         "--fidelities", "256,768",  "--threads", "1",   "--csv", csv, "--json"};
  auto r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["rows"], 5);
  EXPECT_EQ(j["complete"], 5);
  EXPECT_EQ(j["rungs"], json::array({256, 768}));
  EXPECT_NE(r.err.find("ETA"), std::string::npos) << "progress with an ETA:\n" << r.err;
  const std::string table = read_file(csv);
  const auto rows = read_csv(table);
  ASSERT_EQ(rows.size(), 6u);
  const std::vector<std::string> header = {"trial", "genome", "d_model", "params", "status", "call_ms",
                                           "loss_256", "bpb_256", "train_s_256", "loss_768", "bpb_768", "train_s_768"};
  EXPECT_EQ(rows[0], header);
  StudyStore store(st.db, false);
  const auto trials = store.trials(store.get_study("bench-table").id);
  for (size_t i = 1; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), header.size()) << table;
    EXPECT_EQ(rows[i][4], "done");
    const int64_t n = std::stoll(rows[i][0]);
    const TrialRow* t = nullptr;
    for (const auto& x : trials) {
      if (x.number == n) t = &x;
    }
    ASSERT_TRUE(t);
    EXPECT_EQ(rows[i][1], t->genome);
    EXPECT_NEAR(std::stod(rows[i][6]), t->loss_at(0), 1e-6);
    EXPECT_NEAR(std::stod(rows[i][9]), t->loss_at(1), 1e-6);
    EXPECT_NEAR(std::stod(rows[i][5]), t->predicted.at("call").get<double>(), 1e-4);
  }
  const json meta = json::parse(read_file(csv + ".json"));
  EXPECT_EQ(meta["format"], "flashnas.bench_table/1");
  EXPECT_EQ(meta["config"]["search"]["promote"], "all");
  // flashnas proxy reads the table's rungs without training.
  r = run_cli({"proxy", "--table", csv, "--short", "256", "--long", "768", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json p = json::parse(r.out);
  EXPECT_EQ(p["n"], 5);
  std::vector<double> a, b;
  for (size_t i = 1; i < rows.size(); ++i) {
    a.push_back(std::stod(rows[i][6]));
    b.push_back(std::stod(rows[i][9]));
  }
  EXPECT_NEAR(p["spearman"]["value"].get<double>(), spearman(a, b), 1e-12);
  EXPECT_NEAR(p["kendall_tau_b"]["value"].get<double>(), kendall_tau(a, b), 1e-12);
  r = run_cli({"proxy", "--table", csv, "--short", "512", "--long", "768"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--short 512: the table " + csv + " has no rung of 512 tokens; its rungs: 256, 768"),
            std::string::npos)
      << r.err;
  // A rerun trains nothing and writes the same table.
  r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("trial "), std::string::npos) << r.err;
  EXPECT_EQ(read_file(csv), table);
}

TEST(BenchTable, BadRequestsNameTheFlagAndWriteNothing) {
  Study st;
  const auto before = st.dir.entries();
  auto check = [&](std::vector<std::string> extra, const std::string& want) {
    std::vector<std::string> args = {"bench-table", "--config", st.config, "--db", st.db, "--threads", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(want), std::string::npos) << r.err;
    EXPECT_EQ(st.dir.entries(), before) << "nothing written for: " << want;
  };
  check({"--archs", "0", "--fidelities", "256,768"}, "--archs: must be >= 1");
  check({"--archs", "3"}, "--fidelities: a bench table trains every architecture at every rung");
  check({"--archs", "3", "--fidelities", "256,x"}, "--fidelities: \"x\" is not a positive number of tokens");
  check({"--archs", "3", "--fidelities", "768,256"}, "field \"search.fidelities[1]\": rungs must increase");
  check({"--archs", "3", "--fidelities", "256,768", "--csv", (st.dir / "no/such/t.csv").string()},
        "--csv " + (st.dir / "no/such/t.csv").string() + ": the folder");
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'trials'"), 0) << "no study was created";
}

TEST(Fidelity, VersionTwoStudyFilesAreMigrated) {
  test::TempDir dir;
  const std::string db = (dir / "v2.db").string();
  {
    Db d(db, true);
    d.exec(
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO meta VALUES('study_schema_version', '2');"
        "CREATE TABLE studies(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, config TEXT NOT NULL,"
        " config_hash TEXT NOT NULL, seed INTEGER NOT NULL, rng_state TEXT NOT NULL, lut_device INTEGER NOT NULL,"
        " lut_table TEXT NOT NULL, created_at TEXT NOT NULL, finished_at TEXT);"
        "CREATE TABLE trials(id INTEGER PRIMARY KEY, study_id INTEGER NOT NULL REFERENCES studies(id),"
        " number INTEGER NOT NULL, slot INTEGER, cycle INTEGER, origin TEXT NOT NULL, parent INTEGER,"
        " genome TEXT NOT NULL, arch TEXT NOT NULL, hash TEXT NOT NULL, d_model INTEGER NOT NULL,"
        " status TEXT NOT NULL, reason TEXT, predicted TEXT NOT NULL, latency_ms REAL, params INTEGER NOT NULL,"
        " loss REAL, bpb REAL, reused_from INTEGER, worker TEXT, created_at TEXT NOT NULL, started_at TEXT,"
        " finished_at TEXT, train_s REAL, UNIQUE(study_id, number), UNIQUE(study_id, slot));"
        "CREATE TABLE trial_curves(trial_id INTEGER NOT NULL REFERENCES trials(id), step INTEGER NOT NULL,"
        " tokens INTEGER NOT NULL, train_loss REAL, val_loss REAL, lr REAL NOT NULL, PRIMARY KEY(trial_id, step));"
        "INSERT INTO studies VALUES(1, 's', '{}', 'h', 0, '0', 1, '{}', 'now', NULL);"
        "INSERT INTO trials(id, study_id, number, slot, origin, genome, arch, hash, d_model, status, predicted, params,"
        " loss, bpb, created_at, train_s) VALUES(1, 1, 0, 0, 'random', 'g', '{}', 'h0', 16, 'done', '{}', 10, 2.5, 3.5,"
        " 'now', 1.0), (2, 1, 1, NULL, 'random', 'g2', '{}', 'h1', 16, 'pruned', '{}', 10, NULL, NULL, 'now', NULL);"
        "INSERT INTO trial_curves VALUES(1, 8, 512, 2.7, NULL, 0.001), (1, 16, 1024, 2.6, 2.5, 0.0001);");
  }
  StudyStore store(db, false);
  // Version 2 to 3, then 3 to 4 (the lease columns), one step after the other.
  EXPECT_EQ(scalar(db, "SELECT value FROM meta WHERE key = 'study_schema_version'"), 4);
  EXPECT_EQ(scalar(db, "SELECT COUNT(*) FROM pragma_table_info('trials') WHERE name IN ('lease_token', 'lease_expires')"), 2);
  EXPECT_EQ(scalar(db, "SELECT COUNT(*) FROM pragma_table_info('trial_rungs') WHERE name IN ('lease_token', 'lease_expires')"), 2);
  const auto trials = store.trials(1);
  ASSERT_EQ(trials.size(), 2u);
  EXPECT_EQ(trials[0].rung, 0);
  ASSERT_EQ(trials[0].rungs.size(), 1u);
  EXPECT_EQ(trials[0].rungs[0].tokens, 1024);
  EXPECT_EQ(trials[0].rungs[0].loss, 2.5);
  EXPECT_EQ(trials[0].loss_at(0), 2.5);
  EXPECT_EQ(store.curve(1).size(), 2u);
  EXPECT_EQ(trials[1].rung, -1);
  EXPECT_TRUE(trials[1].rungs.empty());
}

}  // namespace
}  // namespace flashnas
