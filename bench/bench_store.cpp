// The study store's throughput: worker processes claiming and finishing
// empty trials (no training) on one study, as fast as the store lets them,
// side by side for SQLite and PostgreSQL at 1, 4 and 16 workers.
//   claim:  a Transaction::Lock::rows transaction taking the next pending
//           trial under a lease (PostgreSQL: FOR UPDATE SKIP LOCKED);
//   finish: the transaction recording its result with the token (the
//           trial, its rung-0 row, a one-point curve: StudyStore::commit_result).
// Each row: trials per second over the whole run (wall clock from the
// workers' start to the last finish), and per trial the claim and finish
// times (median, p90) with the raw finish samples. --json FILE writes every
// row with commit, machine and parameters.
//
//   bench_store --sqlite-dir DIR [--pg URL] [--trials N] [--workers 1,4,16] [--json FILE]
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/db.h"
#include "common/device.h"
#include "common/json_io.h"
#include "study/study_store.h"

using namespace flashnas;
using clock_type = std::chrono::steady_clock;

namespace {

double ms_since(clock_type::time_point t) { return std::chrono::duration<double, std::milli>(clock_type::now() - t).count(); }

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  return v[size_t(q * double(v.size() - 1) + 0.5)];
}

// One worker: claims and finishes until nothing is pending; writes "claim_ms finish_ms" lines to `out`.
void work(const std::string& db, int64_t study, const std::string& out, int index) {
  StudyStore store(db, Access::read_write);
  std::ofstream f(out);
  TrainResult r;
  r.val_loss = 3.0;
  r.val_bpb = 4.3;
  r.tokens = 1024;
  r.params = 1000;
  r.wall_s = 0.1;
  r.curve.push_back(CurvePoint{1, 1024, 3.1, 3.0, 1e-3});
  const std::string me = "bench:" + std::to_string(getpid()) + ":" + std::to_string(index);
  for (;;) {
    const auto t0 = clock_type::now();
    const std::string token = new_lease_token();
    std::optional<TrialRow> t;
    with_db_retry(store.db(), [&] {
      Transaction tx(store.db(), Transaction::Lock::rows);
      t = store.claim_waiting(study, me, token);
      tx.commit();
    }, 60, nullptr);
    if (!t) return;
    const double claim = ms_since(t0);
    const auto t1 = clock_type::now();
    with_db_retry(store.db(), [&] { store.commit_result(Lease{t->id, 0, token}, r, nullptr); }, 60, nullptr);
    f << claim << " " << ms_since(t1) << "\n";
  }
}

json run(const std::string& backend, const std::string& db, int workers, int64_t trials, const std::string& tmp) {
  int64_t study = 0;
  {
    StudyStore store(db, Access::create);
    study = store.open_study("bench-" + std::to_string(workers) + "-" + std::to_string(getpid()), json{{"bench", workers}}, 0, 0,
                             json::object()).id;
    Transaction tx(store.db());
    for (int64_t i = 0; i < trials; ++i) {
      TrialRow t;
      t.origin = "random";
      t.genome = t.arch = "{}";
      t.hash = "h" + std::to_string(i);
      t.status = "pending";
      t.slot = i;
      store.insert(study, t);
    }
    tx.commit();
  }
  const auto t0 = clock_type::now();
  std::vector<pid_t> pids;
  for (int w = 0; w < workers; ++w) {
    const pid_t pid = fork();
    if (pid == 0) {
      try {
        work(db, study, tmp + "/w" + std::to_string(w) + ".txt", w);
        _exit(0);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "worker %d: %s\n", w, e.what());
        _exit(1);
      }
    }
    pids.push_back(pid);
  }
  int failed = 0;
  for (pid_t p : pids) {
    int st = 0;
    waitpid(p, &st, 0);
    failed += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  const double wall_s = ms_since(t0) / 1000;
  std::vector<double> claim, finish;
  for (int w = 0; w < workers; ++w) {
    std::ifstream in(tmp + "/w" + std::to_string(w) + ".txt");
    for (double c, f; in >> c >> f;) {
      claim.push_back(c);
      finish.push_back(f);
    }
  }
  const json row = {{"backend", backend}, {"workers", workers}, {"trials", trials}, {"done", claim.size()},
                    {"failed_workers", failed}, {"wall_s", wall_s}, {"trials_per_s", double(claim.size()) / wall_s},
                    {"claim_ms_median", quantile(claim, 0.5)}, {"claim_ms_p90", quantile(claim, 0.9)},
                    {"finish_ms_median", quantile(finish, 0.5)}, {"finish_ms_p90", quantile(finish, 0.9)},
                    {"finish_ms_samples", finish}};
  std::printf("%-10s %3d workers  %5zu trials in %6.2f s  %8.1f trials/s  claim %6.2f / %6.2f ms  finish %6.2f / %6.2f ms (median / p90)%s\n",
              backend.c_str(), workers, claim.size(), wall_s, double(claim.size()) / wall_s, quantile(claim, 0.5),
              quantile(claim, 0.9), quantile(finish, 0.5), quantile(finish, 0.9), failed ? "  WORKERS FAILED" : "");
  std::fflush(stdout);
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  std::string sqlite_dir, pg, json_out, worker_list = "1,4,16";
  int64_t trials = 400;
  for (int i = 1; i < argc; ++i) {
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (!std::strcmp(argv[i], "--sqlite-dir")) sqlite_dir = next();
    else if (!std::strcmp(argv[i], "--pg")) pg = next();
    else if (!std::strcmp(argv[i], "--trials")) trials = std::atoll(next().c_str());
    else if (!std::strcmp(argv[i], "--workers")) worker_list = next();
    else if (!std::strcmp(argv[i], "--json")) json_out = next();
    else {
      std::fprintf(stderr, "usage: bench_store --sqlite-dir DIR [--pg URL] [--trials N] [--workers 1,4,16] [--json FILE]\n");
      return 2;
    }
  }
  if (sqlite_dir.empty() || trials < 1) {
    std::fprintf(stderr, "bench_store: --sqlite-dir DIR (a folder for the SQLite files) and --trials >= 1 are required\n");
    return 2;
  }
  std::vector<int> workers;
  std::stringstream ss(worker_list);
  for (std::string w; std::getline(ss, w, ',');) workers.push_back(std::atoi(w.c_str()));
  const DeviceInfo dev = describe_device(torch::Device(torch::kCPU));
  std::printf("machine: %s, %ld cores; commit %s; %lld empty trials per run\n\n", dev.name.c_str(), sysconf(_SC_NPROCESSORS_ONLN),
              dev.commit.c_str(), static_cast<long long>(trials));
  json rows = json::array();
  try {
    for (int w : workers) {
      const std::string file = sqlite_dir + "/store-" + std::to_string(w) + ".db";
      for (const char* s : {"", "-wal", "-shm"}) std::remove((file + s).c_str());
      rows.push_back(run("sqlite", file, w, trials, sqlite_dir));
      if (!pg.empty()) rows.push_back(run("postgresql", pg, w, trials, sqlite_dir));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_store: %s\n", e.what());
    return 1;
  }
  if (!json_out.empty()) {
    std::ofstream(json_out) << json{{"commit", dev.commit}, {"machine", dev.name}, {"cores", sysconf(_SC_NPROCESSORS_ONLN)},
                                    {"trials", trials}, {"rows", rows}}
                                   .dump(1)
                            << "\n";
  }
  return 0;
}
