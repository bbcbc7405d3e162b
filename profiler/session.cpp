#include "profiler/session.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "common/device.h"
#include "common/stop.h"
#include "common/error.h"
#include "common/fault.h"
#include "common/format.h"
#include "common/stats.h"
#include "common/version.h"
#include "profiler/predict.h"
#include "profiler/probe.h"
#include "profiler/validate.h"
#include "profiler/verdict.h"

namespace flashnas {
namespace {

using clock_type = std::chrono::steady_clock;

std::string run_id(const std::string& role, const std::string& hash, const std::string& workload, int64_t round) {
  return role + "|" + hash + "|" + workload + "|" + std::to_string(round);
}

}  // namespace

SessionReport run_session(const std::vector<LutKey>& entries, const std::vector<ModelRunSpec>& runs, LutStore& store,
                          int64_t device, const MeasureOptions& opts, const SessionOptions& so,
                          const std::function<void(const SessionProgress&)>& progress) {
  SessionReport rep;
  rep.entries = int64_t(entries.size());
  rep.runs = int64_t(runs.size());
  rep.rounds = so.rounds;
  rep.run_rounds = so.run_rounds;
  const std::string dtype = dtype_name(opts.dtype), runtime = opts.runtime;
  for (const auto& k : entries) {
    if (k.runtime != runtime) throw Error("run_session: entry " + k.describe() + " is not of runtime " + runtime);
  }
  const int threads = opts.device.is_cpu() ? at::get_num_threads() : 0;

  // What is stored already (a resumed run skips it).
  std::set<std::string> have_runs;
  for (const auto& r : store.runs(device, dtype, runtime)) {
    have_runs.insert(run_id(r.role, r.arch_hash, r.workload, r.round));
  }
  std::map<std::string, std::set<int64_t>> have_entries;
  for (const auto& [k, rs] : store.all_rounds(device, dtype, runtime)) {
    for (const auto& r : rs) have_entries[k.describe()].insert(r.round);
  }
  struct Item {
    const LutKey* key = nullptr;
    const ModelRunSpec* run = nullptr;
    int64_t round = 0;
  };
  std::vector<Item> todo;
  const int last_round = std::max(so.rounds, so.run_rounds);
  for (int round = 1; round <= last_round; ++round) {
    std::vector<Item> this_round;
    for (const auto& k : entries) {
      if (round > so.rounds) break;
      if (have_entries[k.describe()].count(round)) {
        ++rep.skipped;
      } else {
        this_round.push_back(Item{&k, nullptr, round});
      }
    }
    for (const auto& r : runs) {
      if (round > so.run_rounds) continue;
      if (have_runs.count(run_id(r.role, r.arch.hash(), r.workload.str(), round))) {
        ++rep.skipped;
      } else {
        this_round.push_back(Item{nullptr, &r, round});
      }
    }
    // Entries and whole-model runs shuffled together, so that a slow spell
    // of the machine falls on all kinds of measurement alike.
    std::mt19937_64 rng(so.seed * 1000003ULL + uint64_t(round));
    std::shuffle(this_round.begin(), this_round.end(), rng);
    todo.insert(todo.end(), this_round.begin(), this_round.end());
  }
  if (todo.empty()) return rep;

  const int64_t bytes = so.probe_bytes > 0 ? so.probe_bytes : probe_memory_bytes(read_cpu_caches());
  MachineProbe probe(opts.device, bytes);
  MeasureOptions run_opts = opts;
  run_opts.timing = so.run_timing;
  run_opts.timing.sync = opts.timing.sync;
  MeasureOptions entry_opts = opts;
  if (so.entry_timing) {
    entry_opts.timing = *so.entry_timing;
    entry_opts.timing.sync = opts.timing.sync;
    entry_opts.attempts = so.entry_attempts;
  }
  // The ETA: entries and whole-model runs cost very differently (tens of
  // microseconds against tens of milliseconds per call, and rounds past
  // `rounds` hold only runs), so each kind's remaining count is priced at
  // that kind's mean so far.
  int64_t left[2] = {0, 0}, done_kind[2] = {0, 0};
  double spent_kind[2] = {0, 0};
  for (const auto& it : todo) ++left[it.key ? 0 : 1];
  const auto t0 = clock_type::now();
  Fault fault = Fault::from_env();
  ProbeReading before = probe.read();
  for (size_t i = 0; i < todo.size(); ++i) {
    const double elapsed = std::chrono::duration<double>(clock_type::now() - t0).count();
    if (so.max_minutes > 0 && elapsed > so.max_minutes * 60) {
      rep.time_limited = true;
      break;
    }
    if (stop_requested()) {  // a signal (common/stop.h): every round so far is committed
      rep.stopped = true;
      break;
    }
    const Item& it = todo[i];
    const int kind = it.key ? 0 : 1;
    const auto item_t0 = clock_type::now();
    SessionProgress p;
    if (it.key) {
      const TimingStats s = measure_entry(*it.key, entry_opts);
      const ProbeReading after = probe.read();
      p.probe = mean_reading(before, after);
      before = after;
      store.put_round(device, *it.key, it.round, s, p.probe, threads);
      p.what = it.key->describe();
      p.us = s.median_us;
    } else {
      const ModelRunSpec& r = *it.run;
      const BenchResult b = bench_workload(r.arch, r.workload, run_opts);
      const ProbeReading after = probe.read();
      p.probe = mean_reading(before, after);
      before = after;
      RunRow row;
      row.role = r.role;
      row.arch_hash = r.arch.hash();
      row.arch = r.arch.to_json().dump();
      row.workload = r.workload.str();
      row.batch = r.workload.batch;
      row.dtype = dtype;
      row.runtime = runtime;
      row.round = it.round;
      row.total_us = b.total.median_us;
      row.prefill_us = b.prefill.median_us;
      row.decode_us = b.decode.median_us;
      row.probe = p.probe;
      store.put_run(device, row);
      p.what = r.role + " " + (r.label.empty() ? r.arch.short_hash() : r.label) + " " + r.workload.str();
      p.us = b.total.median_us;
    }
    ++rep.measured;
    fault.hit("profile-item");
    spent_kind[kind] += std::chrono::duration<double>(clock_type::now() - item_t0).count();
    ++done_kind[kind];
    --left[kind];
    if (progress) {
      const double spent = std::chrono::duration<double>(clock_type::now() - t0).count();
      const double overall = spent / double(i + 1);
      p.done = int64_t(i + 1);
      p.todo = int64_t(todo.size());
      p.eta_s = 0;
      for (int k = 0; k < 2; ++k) {
        p.eta_s += double(left[k]) * (done_kind[k] > 0 ? spent_kind[k] / double(done_kind[k]) : overall);
      }
      progress(p);
    }
  }
  rep.seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  return rep;
}

}  // namespace flashnas
