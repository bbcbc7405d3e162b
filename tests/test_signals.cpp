// SIGINT and SIGTERM sent from outside, as a user's Ctrl-C or a scheduler's
// kill sends them, to every long command: train, search, worker, profile,
// export (training with --train-tokens) and bench-table. Nothing is timed:
// the command pauses itself at an exact point (the test-only hook
// FLASHNAS_FAULT=stop-<event>:N raises SIGSTOP, common/fault.h), the test
// sends the signal while it is paused and then SIGCONT, so the signal always
// arrives in the middle of the work. Each must exit 130 (SIGINT) or 143
// (SIGTERM) saying it was stopped, leave nothing half-written, and the same
// command run again must finish with what an uninterrupted run gives.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <fstream>

#include "common/files.h"
#include "common/json_io.h"
#include "tests/search_fixture.h"

namespace flashnas {
namespace {

namespace fs = std::filesystem;
using test::run_cli;
using test::scalar;
using test::Study;
using test::TempDir;

// Runs flashnas with FLASHNAS_FAULT=`fault`; when it has paused itself,
// sends `sig` and SIGCONT; returns its exit code and output.
test::CliResult run_interrupted(const std::vector<std::string>& args, const std::string& fault, int sig) {
  TempDir tmp;
  const std::string out = (tmp / "out").string(), err = (tmp / "err").string(), bin = test::flashnas_bin();
  const pid_t pid = fork();
  if (pid == 0) {
    setenv("FLASHNAS_FAULT", fault.c_str(), 1);
    const int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1);
    dup2(e, 2);
    std::vector<char*> argv = {const_cast<char*>(bin.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  test::CliResult r;
  int st = 0;
  waitpid(pid, &st, WUNTRACED);
  if (!WIFSTOPPED(st)) {  // it ended before the pause point: the test's setting is wrong
    r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r.out = test::slurp(out);
    r.err = "(never paused at " + fault + ")\n" + test::slurp(err);
    return r;
  }
  kill(pid, sig);
  kill(pid, SIGCONT);
  waitpid(pid, &st, 0);
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0) + 1000;
  r.out = test::slurp(out);
  r.err = test::slurp(err);
  return r;
}

struct Sig {
  int sig;
  int code;
  const char* name;
};
const Sig kSignals[] = {{SIGINT, 130, "SIGINT"}, {SIGTERM, 143, "SIGTERM"}};

std::string corpus_dir(const TempDir& dir) {
  const fs::path text = dir / "text";
  fs::create_directories(text);
  for (int d = 0; d < 4; ++d) {
    std::string s;
    for (int i = 0; i < 120; ++i) s += "document " + std::to_string(d) + " line " + std::to_string(i) + ": the quick brown fox.\n";
    std::ofstream(text / ("d" + std::to_string(d) + ".txt")) << s;
  }
  return text.string();
}

TEST(Signals, TrainStopsAtAStepAndResumeFinishesTheSameRun) {
  for (const Sig& s : kSignals) {
    SCOPED_TRACE(s.name);
    TempDir dir;
    const std::string text = corpus_dir(dir);
    dir.write("arch.json", read_file(std::string(test::source_dir()) + "/configs/arch/demo-tiny.json"));
    auto args = [&](const std::string& out) {
      return std::vector<std::string>{"train", "--arch", (dir / "arch.json").string(), "--data", text, "--tokens", "2048",
                                      "--batch-size", "4", "--seq-len", "32", "--eval-interval", "8", "--eval-batches", "2",
                                      "--out", (dir / out).string(), "--json", "--threads", "1"};
    };
    auto r = run_interrupted(args("run"), "stop-train-step:5", s.sig);
    EXPECT_EQ(r.exit_code, s.code) << r.err;
    EXPECT_NE(r.err.find(std::string("stopped by ") + s.name), std::string::npos) << r.err;
    auto resume = args("run");
    resume.push_back("--resume");
    r = run_cli(resume);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto whole = run_cli(args("whole"));
    ASSERT_EQ(whole.exit_code, 0) << whole.err;
    EXPECT_EQ(json::parse(r.out)["val_loss"].get<double>(), json::parse(whole.out)["val_loss"].get<double>());
  }
}

// The trials of a finished study: (slot, genome, loss) in slot order.
std::vector<std::string> trials_of(const std::string& db) {
  std::vector<std::string> out;
  const int64_t n = scalar(db, "SELECT COUNT(*) FROM trials WHERE slot IS NOT NULL");
  for (int64_t i = 0; i < n; ++i) {
    out.push_back(std::to_string(scalar(db, "SELECT CAST(loss * 1e9 AS INTEGER) FROM trials WHERE slot = " + std::to_string(i))));
  }
  return out;
}

TEST(Signals, SearchAndWorkerStopSafelyAndTheRerunFinishesTheSameStudy) {
  Study whole;
  ASSERT_EQ(run_cli(whole.search_args()).exit_code, 0);
  const auto expected = trials_of(whole.db);
  for (const Sig& s : kSignals) {
    SCOPED_TRACE(s.name);
    {
      Study st;
      auto r = run_interrupted(st.search_args(), "stop-train-step:20", s.sig);
      EXPECT_EQ(r.exit_code, s.code) << r.err;
      EXPECT_NE(r.err.find(std::string("(stopped by ") + s.name + ")"), std::string::npos) << r.err;
      EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM trials WHERE status NOT IN ('pending', 'done')"), 0) << "nothing left running";
      r = run_cli(st.search_args());
      ASSERT_EQ(r.exit_code, 0) << r.err;
      EXPECT_EQ(trials_of(st.db), expected) << "search: the stopped and resumed study is the uninterrupted one";
    }
    {
      Study st;
      auto create = st.search_args();
      create[0] = "create";
      create.insert(create.begin(), "study");
      ASSERT_EQ(run_cli(create).exit_code, 0);
      const std::vector<std::string> worker = {"worker", "--db", st.db, "--study", "s", "--threads", "1"};
      auto r = run_interrupted(worker, "stop-train-step:20", s.sig);
      EXPECT_EQ(r.exit_code, s.code) << r.err;
      EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM trials WHERE status NOT IN ('pending', 'done')"), 0) << "nothing left running";
      r = run_cli(worker);
      ASSERT_EQ(r.exit_code, 0) << r.err;
      EXPECT_EQ(trials_of(st.db), expected) << "worker: the stopped and resumed study is the uninterrupted one";
    }
  }
}

TEST(Signals, ProfileStopsBetweenMeasurementsAndTheRerunKeepsThem) {
  for (const Sig& s : kSignals) {
    SCOPED_TRACE(s.name);
    TempDir dir;
    dir.write("arch.json", read_file(std::string(test::source_dir()) + "/configs/arch/demo-tiny.json"));
    const std::string db = (dir / "lut.db").string();
    const std::vector<std::string> args = {"profile", "--arch", (dir / "arch.json").string(), "--workload", "prompt=16,generate=8",
                                           "--db", db, "--threads", "1", "--rounds", "1", "--json"};
    auto r = run_interrupted(args, "stop-profile-item:3", s.sig);
    EXPECT_EQ(r.exit_code, s.code) << r.err;
    EXPECT_NE(r.err.find(std::string("(stopped by ") + s.name + ")"), std::string::npos) << r.err;
    r = run_cli(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const json j = json::parse(r.out);
    EXPECT_GE(j["skipped"].get<int>(), 3) << "the measurements before the stop are kept";
    EXPECT_EQ(j["entries"], j["entries_planned"]);
  }
}

TEST(Signals, ExportStopsWhileTrainingWritesNothingAndTheRerunExports) {
  Study st;
  ASSERT_EQ(run_cli(st.search_args()).exit_code, 0);
  for (const Sig& s : kSignals) {
    SCOPED_TRACE(s.name);
    const fs::path out = st.dir / (std::string("model-") + s.name);
    const std::vector<std::string> args = {"export", "--db", st.db, "--study", "s", "--train-tokens", "4096", "--no-measure",
                                           "--threads", "1", "--out", out.string()};
    const auto before = test::file_tree(st.dir.path());
    auto r = run_interrupted(args, "stop-train-step:3", s.sig);
    EXPECT_EQ(r.exit_code, s.code) << r.err;
    EXPECT_NE(r.err.find("nothing was written to"), std::string::npos) << r.err;
    EXPECT_EQ(test::file_tree(st.dir.path()), before) << "nothing half-written";
    r = run_cli(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(fs::exists(out / "model.safetensors"));
  }
}

TEST(Signals, BenchTableStopsSafelyAndTheRerunFinishesTheSameTable) {
  auto args = [](const Study& st, const std::string& csv) {
    return std::vector<std::string>{"bench-table", "--config", st.config, "--db", st.db, "--archs", "3", "--fidelities", "256,512",
                                    "--threads", "1", "--csv", (st.dir / csv).string()};
  };
  Study whole;
  ASSERT_EQ(run_cli(args(whole, "t.csv")).exit_code, 0);
  for (const Sig& s : kSignals) {
    SCOPED_TRACE(s.name);
    Study st;
    auto r = run_interrupted(args(st, "t.csv"), "stop-train-step:5", s.sig);
    EXPECT_EQ(r.exit_code, s.code) << r.err;
    EXPECT_FALSE(fs::exists(st.dir / "t.csv")) << "no table from a stopped run";
    r = run_cli(args(st, "t.csv"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM trial_rungs WHERE status = 'done'"),
              scalar(whole.db, "SELECT COUNT(*) FROM trial_rungs WHERE status = 'done'"));
    EXPECT_EQ(scalar(st.db, "SELECT CAST(SUM(loss) * 1e6 AS INTEGER) FROM trial_rungs WHERE status = 'done'"),
              scalar(whole.db, "SELECT CAST(SUM(loss) * 1e6 AS INTEGER) FROM trial_rungs WHERE status = 'done'"))
        << "the same losses as the uninterrupted table";
  }
}

}  // namespace
}  // namespace flashnas
