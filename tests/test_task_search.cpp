// A search on task data (train/task_data.h): every trained trial keeps its
// task metrics on the held-out records, the frontier reports them, export
// evaluates the exported model on every held-out record, and the task
// objective is refused on plain text.
#include <gtest/gtest.h>

#include "common/files.h"
#include "common/json_io.h"
#include "study/study_store.h"
#include "tests/search_fixture.h"
#include "train/dataset.h"
#include "train/training_data.h"

namespace flashnas::test {
namespace {

namespace fs = std::filesystem;

fs::path task_tokens(const TempDir& dir) {
  std::string jsonl;
  for (int k = 0; k < 120; ++k) {
    jsonl += json{{"prompt", "call " + std::to_string(k % 6) + ": "}, {"completion", "{\"f\": " + std::to_string(k % 6) + "}"}}.dump() + "\n";
  }
  dir.write("calls.jsonl", jsonl);
  prepare_token_file(dir / "calls.jsonl", dir / "calls.tokens", "", 1 << 20);
  return dir / "calls.tokens";
}

TEST(TaskSearch, TrialsKeepTaskMetricsAndFrontierAndExportReportThem) {
  TempDir dir;
  const fs::path data = task_tokens(dir);
  std::string toml = tiny_config(data.string());
  replace_once(toml, "tokens = 1024\n", "tokens = 1024\nobjective = \"completion_bpb\"\ntask_eval_records = 3\n");
  dir.write("space.toml", toml);
  const std::string db = (dir / "study.db").string();
  synthetic_lut(parse_config(toml), db);
  auto r = run_cli({"search", "--config", (dir / "space.toml").string(), "--db", db, "--study", "s", "--threads", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find(" | exact "), std::string::npos) << "each trial's line has its exact-match count:\n" << r.err;
  {
    StudyStore store(db, Access::read_only);
    int with_task = 0;
    for (const auto& t : store.trials(store.get_study("s").id)) {
      if (t.status != "done" || t.reused_from) continue;
      ASSERT_FALSE(t.task.is_null()) << "trial " << t.number;
      EXPECT_EQ(t.task["generated"].get<int64_t>(), 3);
      EXPECT_EQ(t.task["records"].get<int64_t>(), 3);
      EXPECT_EQ(t.task["json_records"].get<int64_t>(), 3);  // every reference is a JSON object
      // The study's bpb is the trial's validation bits per completion byte.
      EXPECT_TRUE(std::isfinite(t.bpb));
      ++with_task;
    }
    EXPECT_EQ(with_task, 8);
  }
  r = run_cli({"frontier", "--db", db, "--study", "s"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("compl bpb"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("json ok"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("best's task metrics on 3 held-out records"), std::string::npos) << r.out;
  r = run_cli({"frontier", "--db", db, "--study", "s", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json f = json::parse(r.out);
  EXPECT_TRUE(f["best"]["task"]["exact_rate"].is_number());
  EXPECT_TRUE(f["budgets"][0]["frontier"][0]["task"]["json_valid_rate"].is_number());
  // Export: the model's metrics on every held-out record of the study's data.
  const fs::path out = dir / "model";
  r = run_cli({"export", "--db", db, "--study", "s", "--out", out.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json task = load_json_file(out / "task.json");
  const auto td = open_training_data(data, 0.05, 0, "x");
  EXPECT_EQ(task["records"].get<int64_t>(), int64_t(td.dataset->val_docs().size()));
  EXPECT_EQ(task["generated"].get<int64_t>(), task["records"].get<int64_t>());
  EXPECT_NE(read_file(out / "README.md").find("## Task metrics"), std::string::npos);
  // eval on the same file reports the same figures (the held-out records by default).
  r = run_cli({"eval", "--model", out.string(), "--data", data.string(), "--json", "--threads", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json e = json::parse(r.out);
  EXPECT_EQ(e["records"], task["records"]);
  EXPECT_EQ(e["exact"], task["exact"]);
  EXPECT_NEAR(e["completion_loss"].get<double>(), task["completion_loss"].get<double>(), 1e-9);
}

// Task metrics cost a greedy completion of every held-out record. A rung
// study takes them by default only for the runs that reach its top rung
// (where it compares trials), and at every rung with task_eval_rungs = "all";
// another value is refused by name.
TEST(TaskSearch, TaskMetricsAreTakenAtTheTopRungUnlessEveryRungIsAskedFor) {
  for (const std::string rungs_opt : {"", "all"}) {
    TempDir dir;
    const fs::path data = task_tokens(dir);
    std::string toml = tiny_config(data.string(), "fidelities = [256, 768, 2304]\neta = 2\n");
    replace_once(toml, "tokens = 1024\n",
                 "tokens = 1024\ntask_eval_records = 2\n" + (rungs_opt.empty() ? "" : "task_eval_rungs = \"" + rungs_opt + "\"\n"));
    dir.write("space.toml", toml);
    const std::string db = (dir / "study.db").string();
    synthetic_lut(parse_config(toml), db);
    const auto r = run_cli({"search", "--config", (dir / "space.toml").string(), "--db", db, "--study", "s", "--threads", "1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const int64_t top = scalar(db, "SELECT COUNT(*) FROM trial_rungs WHERE rung = 2 AND status = 'done'");
    const int64_t below = scalar(db, "SELECT COUNT(*) FROM trial_rungs WHERE rung < 2 AND status = 'done'");
    ASSERT_GT(top, 0) << r.err;
    ASSERT_GT(below, top);
    EXPECT_EQ(scalar(db, "SELECT COUNT(*) FROM trial_task WHERE rung = 2"), top) << rungs_opt;
    EXPECT_EQ(scalar(db, "SELECT COUNT(*) FROM trial_task WHERE rung < 2"), rungs_opt == "all" ? below : 0) << rungs_opt;
  }
  TempDir dir;
  std::string toml = tiny_config(task_tokens(dir).string());
  replace_once(toml, "tokens = 1024\n", "tokens = 1024\ntask_eval_rungs = \"some\"\n");
  dir.write("space.toml", toml);
  const auto r = run_cli({"search", "--config", (dir / "space.toml").string(), "--db", (dir / "study.db").string(), "--study",
                          "s", "--threads", "1"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("field \"train.task_eval_rungs\": must be \"top\""), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "study.db")) << "nothing is written for a config refused";
}

TEST(TaskSearch, TheTaskObjectiveIsRefusedOnPlainText) {
  TempDir dir;
  const fs::path data = tiny_data(dir);
  std::string toml = tiny_config(data.string());
  replace_once(toml, "tokens = 1024\n", "tokens = 1024\nobjective = \"completion_bpb\"\n");
  dir.write("space.toml", toml);
  const std::string db = (dir / "study.db").string();
  synthetic_lut(parse_config(toml), db);
  const auto before = file_tree(dir.path());
  const auto r = run_cli({"search", "--config", (dir / "space.toml").string(), "--db", db, "--study", "s", "--threads", "1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("field \"train.objective\": \"completion_bpb\" needs task data"), std::string::npos) << r.err;
  EXPECT_EQ(file_tree(dir.path()), before);
  std::string bad = tiny_config(data.string());
  replace_once(bad, "tokens = 1024\n", "tokens = 1024\nobjective = \"accuracy\"\n");
  EXPECT_NE(input_error_of([&] { parse_config(bad); }).find("field \"train.objective\": must be \"loss\""), std::string::npos);
}

}  // namespace
}  // namespace flashnas::test
