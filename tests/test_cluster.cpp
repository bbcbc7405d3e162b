// Studies on many workers: results independent of the worker count,
// stateless `flashnas worker` processes on a PostgreSQL study, a remote
// worker's expired lease taken over, SIGTERM, `study copy` from SQLite to
// PostgreSQL and resuming there, `launch` files and their bad input, and a
// chaos run (workers killed with SIGKILL, the server restarted) after which
// nothing is lost or duplicated. The chaos run's size comes from the
// environment (bench/chaos_study.sh runs the large one and keeps its report).
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <thread>

#include "common/db.h"
#include "common/json_io.h"
#include "pg_server.h"
#include "study/study_store.h"
#include "search_fixture.h"
#include "test_util.h"

extern char** environ;

namespace flashnas {
namespace {

using test::run_cli;

// (slot, genome, status, loss) of every trial, in order: what a study decided.
std::vector<std::string> decisions(const std::string& db, const std::string& study) {
  StudyStore store(db, Access::read_only);
  std::vector<std::string> out;
  for (const auto& t : store.trials(store.get_study(study).id)) {
    char loss[40];
    std::snprintf(loss, sizeof loss, "%.17g", t.loss);
    out.push_back(std::to_string(t.slot.value_or(-1)) + " " + t.genome + " " + t.status + " " + loss);
  }
  return out;
}

pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  std::vector<std::string> all = {"/bin/sh", "-c", "exec \"$0\" \"$@\" >>" + log + " 2>&1", test::flashnas_bin()};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  EXPECT_EQ(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, argv.data(), environ), 0);
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

json status_of(const std::string& db, const std::string& study) {
  const auto r = run_cli({"study", "status", "--db", db, "--study", study, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return parse_json(r.out, "study status");
}

// `flashnas study create` with the study's search arguments: the study, nothing trained.
test::CliResult create_study(const test::Study& st) {
  auto a = st.search_args();
  a[0] = "create";
  a.insert(a.begin(), "study");
  return run_cli(a);
}

// What no crash may break: complete, nothing in flight, no architecture
// trained twice, every trained rung with its curve, nothing failed.
void expect_sound(const std::string& db, const std::string& study, const std::string& log = "") {
  const json s = status_of(db, study);
  EXPECT_TRUE(s["finished"].get<bool>()) << s.dump() << log;
  EXPECT_TRUE(s["in_flight"].empty()) << s.dump();
  EXPECT_EQ(s["trained_twice"], 0) << s.dump();
  EXPECT_EQ(s["trained_without_curve"], 0) << s.dump();
  EXPECT_FALSE(s["trials"].contains("running")) << s.dump();
  EXPECT_FALSE(s["trials"].contains("pending")) << s.dump();
  EXPECT_FALSE(s["trials"].contains("failed")) << s.dump() << log;
}

TEST(Cluster, ResultsDoNotDependOnTheNumberOfWorkers) {
  test::Study one, three;
  auto a = one.search_args();
  const auto r1 = run_cli(a);
  ASSERT_EQ(r1.exit_code, 0) << r1.err;
  auto b = three.search_args();
  b.insert(b.end(), {"--workers", "3"});
  const auto r3 = run_cli(b);
  ASSERT_EQ(r3.exit_code, 0) << r3.err;
  const auto d1 = decisions(one.db, "s"), d3 = decisions(three.db, "s");
  EXPECT_EQ(d1, d3) << "one worker:\n" << r1.err << "\nthree workers:\n" << r3.err;
  EXPECT_GE(d1.size(), 8u);
}

TEST(Cluster, StatelessWorkersFinishAStudyMadeByStudyCreate) {
  FLASHNAS_REQUIRE_PG(pg);
  test::Study st("", "max_ms = 1000", false, "reliable", pg->new_database());
  const auto c = create_study(st);
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(c.out.find("flashnas worker --db " + st.db), std::string::npos) << c.out;
  EXPECT_EQ(status_of(st.db, "s")["trials"].size(), 0u);  // made, nothing trained
  const std::string log = (st.dir / "workers.log").string();
  std::vector<pid_t> w;
  for (int i = 0; i < 2; ++i) {
    w.push_back(spawn({"worker", "--db", st.db, "--study", "s", "--artifacts", st.artifacts, "--threads", "1"}, log));
  }
  for (pid_t p : w) EXPECT_EQ(wait_exit(p), 0) << test::slurp(log);
  expect_sound(st.db, "s", test::slurp(log));
  EXPECT_NE(test::slurp(log).find("worker: study \"s\" complete"), std::string::npos);
}

TEST(Cluster, ARemoteWorkersExpiredLeaseIsTakenOverAndSigtermGivesTheTrialBack) {
  test::Study st;
  // A worker killed right after its first claim, then made to look like a
  // worker on another machine (which no one here can check), its lease run out.
  const auto killed = run_cli(st.search_args(), {"env", "FLASHNAS_FAULT=kill-claim:1"});
  ASSERT_NE(killed.exit_code, 0);
  {
    Db db(st.db, Access::read_write);
    Stmt u(db, "UPDATE trials SET worker = 'elsewhere:123:456:789', lease_expires = 0 WHERE status = 'running'");
    u.run();
    Stmt n(db, "SELECT COUNT(*) FROM trials WHERE worker = 'elsewhere:123:456:789'");
    ASSERT_TRUE(n.step());
    ASSERT_EQ(n.int64(0), 1);
  }
  // SIGTERM in the middle of the first training: the trial goes back, exit 143.
  const auto stop = run_cli({"worker", "--db", st.db, "--study", "s", "--threads", "1"}, {"env", "FLASHNAS_FAULT=term-train-step:3"});
  EXPECT_EQ(stop.exit_code, 143) << stop.err;
  EXPECT_NE(stop.err.find("stopped"), std::string::npos) << stop.err;
  {
    StudyStore store(st.db, Access::read_only);
    const auto t = store.trial(store.get_study("s").id, 0);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->status, "pending") << "the stopped worker gave the trial back";
    EXPECT_TRUE(store.in_flight(store.get_study("s").id).empty());
  }
  const auto done = run_cli({"worker", "--db", st.db, "--study", "s", "--threads", "1"});
  ASSERT_EQ(done.exit_code, 0) << done.err;
  StudyStore store(st.db, Access::read_only);
  const auto t = store.trial(store.get_study("s").id, 0);
  EXPECT_EQ(t->status, "done");
  EXPECT_NE(t->worker, "elsewhere:123:456:789");
}

// A worker paused mid-training (SIGSTOP, as a frozen machine) while its
// lease expires: another worker takes the trial over and finishes the study;
// woken up, the paused worker's result is refused by the token check (or its
// heartbeat finds the lease gone first) and discarded, and it exits cleanly.
TEST(Cluster, APausedWorkersResultIsDiscardedAfterItsLeaseWasTakenOver) {
  test::Study st;
  ASSERT_EQ(create_study(st).exit_code, 0);
  const std::string log = (st.dir / "paused.log").string();
  setenv("FLASHNAS_FAULT", "stop-train-step:2", 1);
  const pid_t paused = spawn({"worker", "--db", st.db, "--study", "s", "--threads", "1", "--lease-s", "1"}, log);
  unsetenv("FLASHNAS_FAULT");
  int status = 0;
  ASSERT_EQ(waitpid(paused, &status, WUNTRACED), paused);
  ASSERT_TRUE(WIFSTOPPED(status)) << test::slurp(log);
  std::string held_by;
  {
    Db db(st.db, Access::read_write);
    Stmt w(db, "SELECT worker FROM trials WHERE status = 'running'");
    ASSERT_TRUE(w.step());
    held_by = w.text(0);
    db.exec("UPDATE trials SET lease_expires = 0 WHERE status = 'running'");  // its lease ran out meanwhile
  }
  const auto other = run_cli({"worker", "--db", st.db, "--study", "s", "--threads", "1"});
  ASSERT_EQ(other.exit_code, 0) << other.err;
  kill(paused, SIGCONT);
  EXPECT_EQ(wait_exit(paused), 0) << test::slurp(log);
  EXPECT_NE(test::slurp(log).find("this result is discarded"), std::string::npos) << test::slurp(log);
  expect_sound(st.db, "s", test::slurp(log));
  StudyStore store(st.db, Access::read_only);
  for (const auto& t : store.trials(store.get_study("s").id)) EXPECT_NE(t.worker, held_by) << "trial " << t.number;
}

TEST(Cluster, AStudyCopiedFromSqliteToPostgresResumesThere) {
  FLASHNAS_REQUIRE_PG(pg);
  test::Study st;
  // Killed (SIGKILL) right after its third result: a study half done, a claim maybe in flight.
  const auto part = run_cli(st.search_args(), {"env", "FLASHNAS_FAULT=kill-result:3"});
  EXPECT_NE(part.exit_code, 0);
  const auto before = decisions(st.db, "s");
  ASSERT_GE(before.size(), 3u);
  const std::string url = pg->new_database();
  const std::string runs = (st.dir / "pg-runs").string();
  const auto cp = run_cli({"study", "copy", st.db, url, "--artifacts", runs});
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
  EXPECT_NE(cp.out.find("the latency table came along"), std::string::npos) << cp.out;
  // Copying again into the same database is refused, and changes nothing.
  const auto again = run_cli({"study", "copy", st.db, url, "--artifacts", runs});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("already holds flashnas data"), std::string::npos) << again.err;
  // A worker on the copy needs only the URL: the table and config come with the study.
  const auto w = run_cli({"worker", "--db", url, "--study", "s", "--artifacts", runs, "--threads", "1"});
  ASSERT_EQ(w.exit_code, 0) << w.err;
  expect_sound(url, "s", w.err);
  const auto after = decisions(url, "s");
  ASSERT_GT(after.size(), before.size());
  for (size_t i = 0; i < before.size(); ++i) {
    if (before[i].find(" done ") != std::string::npos) {
      EXPECT_EQ(after[i], before[i]) << "a finished trial changed";
    }
  }
  // Exported from the copy: the weights came along.
  const auto e = run_cli({"export", "--db", url, "--study", "s", "--artifacts", runs, "--out", (st.dir / "m").string(), "--no-measure"});
  EXPECT_EQ(e.exit_code, 0) << e.err;
}

// A copy that fails after its rows were written (here: the study's run
// folder already exists at the destination) leaves the PostgreSQL database
// as it found it: no rows and no tables.
TEST(Cluster, AFailedCopyIntoPostgresLeavesTheDatabaseEmpty) {
  FLASHNAS_REQUIRE_PG(pg);
  test::Study st;
  const auto part = run_cli(st.search_args(), {"env", "FLASHNAS_FAULT=kill-result:1"});
  EXPECT_NE(part.exit_code, 0);
  const std::string url = pg->new_database();
  const std::filesystem::path runs = st.dir / "pg-runs";
  std::filesystem::create_directories(runs / "s");
  const auto cp = run_cli({"study", "copy", st.db, url, "--artifacts", runs.string()});
  EXPECT_EQ(cp.exit_code, 2) << cp.err;
  EXPECT_NE(cp.err.find("already exists"), std::string::npos) << cp.err;
  Db d(url, Access::create);
  EXPECT_EQ(d.connection().table_names(), std::vector<std::string>{});
  EXPECT_TRUE(std::filesystem::is_empty(runs / "s"));
}

TEST(Cluster, LaunchWritesASlurmArrayAndAnIndexedJobAndRefusesWhatAClusterCannotUse) {
  FLASHNAS_REQUIRE_PG(pg);
  test::Study st("", "max_ms = 1000", false, "reliable", pg->new_database());
  ASSERT_EQ(create_study(st).exit_code, 0);
  const std::string sb = (st.dir / "w.sbatch").string(), yaml = (st.dir / "w.yaml").string();
  auto s = run_cli({"launch", "slurm", "--db", st.db, "--study", "s", "--workers", "4", "--artifacts", st.artifacts, "--out", sb,
                    "--sbatch-arg=--partition=cpu", "--threads", "2"});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  const std::string script = test::slurp(sb);
  for (const std::string& want : std::vector<std::string>{"#SBATCH --array=0-3\n", "#SBATCH --cpus-per-task=2\n", "#SBATCH --partition=cpu\n",
                                 "#SBATCH --signal=B:TERM@120\n", "'worker' '--db' '" + st.db + "' '--study' 's'",
                                 "'--artifacts' '" + st.artifacts + "'"}) {
    EXPECT_NE(script.find(want), std::string::npos) << want << "\n" << script;
  }
  auto k = run_cli({"launch", "k8s", "--db", st.db, "--study", "s", "--workers", "3", "--artifacts", st.artifacts, "--out", yaml,
                    "--image", "registry.example/flashnas:1", "--artifacts-claim", "runs", "--pgpass-secret", "pg"});
  ASSERT_EQ(k.exit_code, 0) << k.err;
  const std::string job = test::slurp(yaml);
  for (const std::string& want : std::vector<std::string>{"completionMode: Indexed\n", "completions: 3\n", "parallelism: 3\n", "- type: DisruptionTarget\n",
                                 "- \"worker\"\n", "claimName: \"runs\"\n", "secretName: \"pg\"\n", "value: /etc/flashnas/pgpass/pgpass\n"}) {
    EXPECT_NE(job.find(want), std::string::npos) << want << "\n" << job;
  }
  // --submit where the cluster's tool is missing: exit 2, saying where the written file is.
  if (std::system("command -v kubectl >/dev/null 2>&1") != 0) {
    auto sub = run_cli({"launch", "k8s", "--db", st.db, "--study", "s", "--workers", "1", "--artifacts", st.artifacts, "--out",
                        yaml, "--image", "i", "--artifacts-claim", "c", "--submit"});
    EXPECT_EQ(sub.exit_code, 2) << sub.err;
    EXPECT_NE(sub.err.find("--submit: kubectl is not on PATH here; the launch file is written (" + yaml), std::string::npos)
        << sub.err;
  }
  // Refused, exit 2, no file written: a SQLite file, an absent study, a password, a relative folder.
  const std::string out = (st.dir / "bad.sbatch").string();
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"--db", (st.dir / "x.db").string(), "--study", "s", "--artifacts", st.artifacts}, "need a PostgreSQL URL"},
      {{"--db", st.db, "--study", "nope", "--artifacts", st.artifacts}, "no study named \"nope\""},
      {{"--db", "postgresql://u:hunter2@h/db", "--study", "s", "--artifacts", st.artifacts}, "carries a password"},
      {{"--db", st.db, "--study", "s", "--artifacts", "runs"}, "--artifacts: give the shared folder as an absolute path"}};
  for (const auto& [args, msg] : bad) {
    std::vector<std::string> a = {"launch", "slurm", "--workers", "2", "--out", out};
    a.insert(a.end(), args.begin(), args.end());
    const auto r = run_cli(a);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(msg), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("hunter2"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(out));
  }
}

// Bad credentials and an unreachable server: exit 2, the problem named, no password printed, nothing written.
TEST(Cluster, WrongCredentialsAndAnUnreachableServerAreClearErrors) {
  FLASHNAS_REQUIRE_PG(pg);
  const std::string url = "postgresql://" + std::string(test::PgServer::kPasswordUser) + "@/postgres?host=" + pg->socket_dir();
  const auto r = run_cli({"study", "status", "--db", url, "--study", "s"}, {"env", "PGPASSWORD=wrong-secret"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("password authentication failed"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("wrong-secret"), std::string::npos) << r.err;
  const auto u = run_cli({"worker", "--db", "postgresql://nobody@/x?host=/nonexistent-flashnas&connect_timeout=2", "--study", "s",
                          "--artifacts", "/tmp"});
  EXPECT_EQ(u.exit_code, 2) << u.err;
  EXPECT_NE(u.err.find("cannot connect to the PostgreSQL database"), std::string::npos) << u.err;
  // A database of another study schema version: refused by name, left as it was.
  test::Study st("", "max_ms = 1000", false, "reliable", pg->new_database());
  ASSERT_EQ(create_study(st).exit_code, 0);
  {
    Db db(st.db, Access::read_write);
    db.exec("UPDATE meta SET value = '99' WHERE key = 'study_schema_version'");
  }
  const auto v = run_cli({"worker", "--db", st.db, "--study", "s", "--artifacts", st.artifacts});
  EXPECT_EQ(v.exit_code, 2) << v.err;
  EXPECT_NE(v.err.find("study schema version 99; this flashnas reads version 4"), std::string::npos) << v.err;
  EXPECT_EQ(test::scalar(st.db, "SELECT COUNT(*) FROM trials"), 0);
  EXPECT_FALSE(std::filesystem::exists(st.artifacts));
}

// Workers killed with SIGKILL at random moments (each replaced by a new one)
// and the server restarted mid-study: the study completes sound. Size:
// FLASHNAS_CHAOS_WORKERS (3), _KILLS (4), _RESTARTS (1), _TRIALS (10),
// _TOKENS (1024 training tokens per trial); a
// JSON report goes to FLASHNAS_CHAOS_REPORT when set. Pass or fail does not
// depend on when the kills land: every moment must be safe.
TEST(Cluster, KilledWorkersAndAServerRestartLoseNothing) {
  FLASHNAS_REQUIRE_PG(pg);
  auto env_int = [](const char* name, int def) {
    const char* v = std::getenv(name);
    return v ? std::atoi(v) : def;
  };
  const int workers = env_int("FLASHNAS_CHAOS_WORKERS", 3), kills = env_int("FLASHNAS_CHAOS_KILLS", 4),
            restarts = env_int("FLASHNAS_CHAOS_RESTARTS", 1), trials = env_int("FLASHNAS_CHAOS_TRIALS", 10),
            tokens = env_int("FLASHNAS_CHAOS_TOKENS", 1024);
  const std::string backend = std::getenv("FLASHNAS_CHAOS_SQLITE") ? "sqlite" : "postgresql";
  test::Study st("algorithm = \"random\"\n", "max_ms = 1000", false, "reliable", backend == "sqlite" ? "" : pg->new_database());
  {
    std::string cfg = test::slurp(st.config);
    test::replace_once(cfg, "trials = 8", "trials = " + std::to_string(trials));
    test::replace_once(cfg, "tokens = 1024", "tokens = " + std::to_string(tokens));
    std::ofstream(st.config) << cfg;
  }
  ASSERT_EQ(create_study(st).exit_code, 0);
  const std::string artifacts = st.artifacts.empty() ? st.db + ".runs" : st.artifacts;
  const std::string log = (st.dir / "workers.log").string();
  const std::vector<std::string> args = {"worker", "--db", st.db, "--study", "s", "--artifacts", artifacts, "--threads", "1",
                                         "--lease-s", "10"};
  std::vector<pid_t> w;
  for (int i = 0; i < workers; ++i) w.push_back(spawn(args, log));
  std::mt19937 rng(20261123);
  const int events = kills + restarts;
  int killed = 0, restarted = 0, failed_early = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int e = 0; e < events; ++e) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1000 + rng() % 2000));
    // The restarts spread evenly among the kills.
    const bool restart = backend == "postgresql" && restarted < restarts && e == (restarted + 1) * events / (restarts + 1);
    if (restart) {
      std::string why;
      ASSERT_TRUE(pg->restart(why)) << why;
      ++restarted;
      continue;
    }
    const size_t i = rng() % w.size();
    int status = 0;
    const bool running = waitpid(w[i], &status, WNOHANG) == 0;
    if (running) {
      kill(w[i], SIGKILL);
      wait_exit(w[i]);
      ++killed;
    } else {
      failed_early += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    w[i] = spawn(args, log);  // the scheduler starts a new one
  }
  int failed = failed_early;
  for (pid_t p : w) failed += wait_exit(p) != 0;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string text = test::slurp(log);
  EXPECT_EQ(failed, 0) << text;
  expect_sound(st.db, "s", text);
  EXPECT_EQ(text.find("flashnas: error"), std::string::npos) << text;
  auto count = [&text](const std::string& what) {
    int64_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };
  const json s = status_of(st.db, "s");
  if (const char* out = std::getenv("FLASHNAS_CHAOS_REPORT")) {
    std::ofstream(out) << json{{"backend", backend}, {"workers", workers}, {"kills", killed}, {"restarts", restarted},
                               {"trials_asked", trials}, {"tokens_per_trial", tokens}, {"kill_attempts", kills}, {"status", s}, {"workers_failed", failed}, {"wall_s", wall},
                               {"log_lines", {{"database is locked", count("database is locked")},
                                              {"lease lost", count("lease is lost") + count("no longer holds its lease")},
                                              {"database back", count("the database is back")},
                                              {"trials trained", count("\ntrial ")}}}}
                              .dump(2)
                       << "\n";
  }
}

}  // namespace
}  // namespace flashnas

namespace flashnas {
namespace {

// `flashnas launch slurm --submit` on a real cluster: the array's tasks are
// the study's workers (scripts/test.sh starts a single-node cluster on
// localhost when it can; elsewhere this skips).
TEST(ClusterSlurm, ASubmittedJobArrayFinishesTheStudy) {
  if (std::system("sinfo -h >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "no Slurm cluster answers here (scripts/test.sh starts one on localhost as root: scripts/slurm-local.sh)";
  }
  FLASHNAS_REQUIRE_PG(pg);
  test::Study st("", "max_ms = 1000", false, "reliable", pg->new_database());
  ASSERT_EQ(create_study(st).exit_code, 0);
  const std::string sb = (st.dir / "w.sbatch").string();
  const auto s = run_cli({"launch", "slurm", "--db", st.db, "--study", "s", "--workers", "2", "--artifacts", st.artifacts,
                          "--out", sb, "--submit"});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  const auto at = s.out.find("Submitted batch job ");
  ASSERT_NE(at, std::string::npos) << s.out;
  const std::string job = std::to_string(std::atoll(s.out.c_str() + at + 20));
  // Until the array has left the queue (a generous limit: the study trains in seconds).
  bool gone = false;
  for (int i = 0; i < 600 && !gone; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    FILE* p = popen(("squeue -h -j " + job + " 2>/dev/null").c_str(), "r");
    char buf[256];
    gone = p && !fgets(buf, sizeof buf, p);
    if (p) pclose(p);
  }
  ASSERT_TRUE(gone) << "job " << job << " still queued after 300 s";
  std::string logs;
  for (const auto& e : std::filesystem::directory_iterator(st.dir.path())) {
    if (e.path().extension() == ".log") logs += test::slurp(e.path());
  }
  expect_sound(st.db, "s", logs);
  EXPECT_NE(logs.find("worker: study \"s\" complete"), std::string::npos) << logs;
}

}  // namespace
}  // namespace flashnas
