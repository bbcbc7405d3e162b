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

// One item's rounds combined under `policy`: values (us or ms) with the
// probe index of each round, normalised to `ref` for the norm_* policies.
double combine(const std::vector<double>& values, const std::vector<double>& probe_index, double ref,
               const std::string& policy) {
  std::vector<double> v;
  const bool norm = policy.rfind("norm_", 0) == 0;
  for (size_t i = 0; i < values.size(); ++i) {
    v.push_back(norm && probe_index[i] > 0 ? values[i] * ref / probe_index[i] : values[i]);
  }
  if (v.empty()) return NAN;
  const bool use_min = policy.size() >= 4 && policy.compare(policy.size() - 4, 4, "_min") == 0;
  return use_min ? *std::min_element(v.begin(), v.end()) : median(v);
}

// The probe's readings over time, smoothed: at time t, the median of the
// readings within +-kSmoothSeconds. One reading is a few milliseconds of work
// and noisy on its own; a drift of the machine lasts seconds to minutes. (On
// the development machine, normalising by single readings made the held-out
// accuracy worse, by smoothed ones not; see the README.)
constexpr double kSmoothSeconds = 15.0;

class ProbeTrack {
 public:
  void add(double at, double index) {
    if (at > 0 && index > 0) pts_.emplace_back(at, index);
  }
  void done() { std::sort(pts_.begin(), pts_.end()); }
  // The smoothed index at `at`; `fallback` (the reading itself) without a time.
  double at(double at, double fallback) const {
    if (at <= 0 || pts_.empty()) return fallback;
    auto lo = std::lower_bound(pts_.begin(), pts_.end(), std::make_pair(at - kSmoothSeconds, 0.0));
    auto hi = std::upper_bound(pts_.begin(), pts_.end(), std::make_pair(at + kSmoothSeconds, double(INFINITY)));
    std::vector<double> v;
    for (auto it = lo; it != hi; ++it) v.push_back(it->second);
    return v.empty() ? fallback : median(v);
  }
  const std::vector<std::pair<double, double>>& points() const { return pts_; }

 private:
  std::vector<std::pair<double, double>> pts_;
};

struct RunGroup {
  std::string role, hash, workload;
  ArchSpec arch;
  Workload w;
  std::vector<double> total_ms, probe;
};

json validation_json(const std::string& workload, const std::vector<ValidationRow>& rows) {
  WorkloadValidation v;
  v.workload = Workload::parse(workload, "stored run");
  v.rows = rows;
  summarize_validation(v);
  return v.to_json();
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

json finalize_table(LutStore& store, int64_t device, const std::string& dtype, const std::string& runtime,
                    const std::vector<Workload>& workloads, const std::string& policy, const Bar& bar) {
  if (policy != "auto" && std::find(kPolicies.begin(), kPolicies.end(), policy) == kPolicies.end()) {
    throw InputError("policy \"" + policy + "\": must be auto or one of " + join_comma(kPolicies));
  }
  const auto entry_rounds = store.all_rounds(device, dtype, runtime);
  const auto run_rows = store.runs(device, dtype, runtime);

  // The probe: the reference speed is the median reading of the table; the
  // drift is how far the readings spread around it.
  std::vector<double> readings;
  std::set<std::string> commits;
  ProbeTrack track;
  for (const auto& [k, rs] : entry_rounds) {
    for (const auto& r : rs) readings.push_back(r.probe.index()), track.add(r.at_s, r.probe.index());
  }
  for (const auto& r : run_rows) {
    readings.push_back(r.probe.index());
    track.add(r.at_s, r.probe.index());
    commits.insert(r.commit);
  }
  track.done();
  std::vector<double> smooth;
  for (const auto& [at, idx] : track.points()) smooth.push_back(track.at(at, idx));
  const double ref = readings.empty() ? 0 : median(readings);
  json drift = json::object();
  if (!readings.empty()) {
    drift = {{"readings", readings.size()},
             {"reference_index_us", ref},
             {"p10_ratio", quantile(readings, 0.1) / ref},
             {"p90_ratio", quantile(readings, 0.9) / ref},
             {"min_ratio", *std::min_element(readings.begin(), readings.end()) / ref},
             {"max_ratio", *std::max_element(readings.begin(), readings.end()) / ref}};
    if (!smooth.empty()) {
      // The drift proper: the smoothed speed's range over the run.
      drift["smoothed_min_ratio"] = *std::min_element(smooth.begin(), smooth.end()) / ref;
      drift["smoothed_max_ratio"] = *std::max_element(smooth.begin(), smooth.end()) / ref;
      drift["p90_over_p10"] = quantile(smooth, 0.9) / quantile(smooth, 0.1);
      drift["seconds"] = track.points().back().first - track.points().front().first;
    }
  }
  const int threads = at::get_num_threads();
  const double cache_mb = double(rotation_bytes(read_cpu_caches(), threads)) / 1e6;

  // Whole-model runs grouped per (role, architecture, workload).
  std::map<std::string, RunGroup> groups;
  for (const auto& r : run_rows) {
    RunGroup& g = groups[r.role + "|" + r.arch_hash + "|" + r.workload];
    if (g.total_ms.empty()) {
      g.role = r.role;
      g.hash = r.arch_hash;
      g.workload = r.workload;
      g.arch = ArchSpec::from_json(parse_json(r.arch, "lut_runs row " + r.arch_hash), "lut_runs row " + r.arch_hash);
      g.w = Workload::parse(r.workload, "lut_runs row");
    }
    g.total_ms.push_back(r.total_us / 1e3);
    g.probe.push_back(track.at(r.at_s, r.probe.index()));
  }

  // Every policy: its table and its models fitted on the fit runs, with their
  // cross-validated error (which chooses the policy under "auto").
  LutTable base = LutTable::load(store, device, dtype, runtime);
  struct Fitted {
    LutTable table;
    std::map<std::string, double> measured;  // group id -> ms
    std::map<int64_t, ModelChoice> choices;  // per batch size
    double cv = 0;                           // mean over batch sizes of the chosen model's CV error
  };
  std::map<std::string, Fitted> fitted;
  json policy_cv = json::object();
  std::string selected = policy;
  for (const std::string& pol : kPolicies) {
    Fitted& f = fitted.emplace(pol, Fitted{base, {}, {}, 0}).first->second;
    for (const auto& [k, rs] : entry_rounds) {
      std::vector<double> v, pi;
      for (const auto& r : rs) v.push_back(r.median_us), pi.push_back(track.at(r.at_s, r.probe.index()));
      f.table.set(k, combine(v, pi, ref, pol));
    }
    std::map<int64_t, std::vector<FitRow>> fit_rows;
    for (const auto& [id, g] : groups) {
      f.measured[id] = combine(g.total_ms, g.probe, ref, pol);
      if (g.role != "fit") continue;
      FitRow row = predict(g.arch, g.w, f.table, false).row;
      row.measured_ms = f.measured[id];
      fit_rows[g.w.batch].push_back(row);
    }
    json per_batch = json::object();
    for (const auto& [batch, rows] : fit_rows) {
      f.choices[batch] = choose_model(rows, cache_mb);
      const double e = f.choices[batch].models.at(f.choices[batch].best).cv_error;
      per_batch[std::to_string(batch)] = e;
      f.cv += e / double(fit_rows.size());
    }
    policy_cv[pol] = {{"mean", f.cv}, {"batches", per_batch}};
  }
  if (policy == "auto") {
    selected = kPolicies.front();
    for (const auto& pol : kPolicies) {
      if (fitted.at(pol).cv < fitted.at(selected).cv) selected = pol;
    }
  }
  json comparison = json::array(), chosen;
  for (const std::string& pol : kPolicies) {
    const LutTable& table = fitted.at(pol).table;
    const std::map<std::string, double>& measured = fitted.at(pol).measured;
    const std::map<int64_t, ModelChoice>& choices = fitted.at(pol).choices;
    // Held-out accuracy of every model kind, per role and workload.
    json pol_models = json::array(), pol_val = json::object();
    // The entry sums of every held-out run, once; each model kind applies to them.
    std::map<std::string, FitRow> raw_rows;
    for (const auto& [id, g] : groups) {
      if (g.role != "fit") raw_rows[id] = predict(g.arch, g.w, table, false).row;
    }
    for (const std::string& kind : {std::string("sum"), std::string("scale"), std::string("nnls"), std::string("chosen")}) {
      std::map<std::string, std::map<std::string, std::vector<ValidationRow>>> by;  // role -> workload -> rows
      bool any = false;
      for (const auto& [id, g] : groups) {
        if (g.role == "fit") continue;
        const FitRow& row = raw_rows.at(id);
        double pred = row.prefill_raw_ms + row.decode_raw_ms;
        auto c = choices.find(g.w.batch);
        if (c != choices.end()) {
          const std::string k = kind == "chosen" ? c->second.best : kind;
          auto m = c->second.models.find(k);
          if (m == c->second.models.end()) continue;
          pred = m->second.apply(row);
        } else if (kind != "sum" && kind != "chosen") {
          continue;
        }
        any = true;
        by[g.role][g.workload].push_back(ValidationRow{g.arch.name.empty() ? g.hash.substr(0, 12) : g.arch.name, g.hash,
                                                       pred, measured.at(id)});
      }
      if (!any) continue;
      for (const auto& [role, per_w] : by) {
        for (const auto& [w, rows] : per_w) {
          json v = validation_json(w, rows);
          json line = {{"policy", pol},
                       {"model", kind},
                       {"role", role},
                       {"workload", w},
                       {"n", v["n"]},
                       {"within_5pct", v["within_5pct"]},
                       {"within_10pct", v["within_10pct"]},
                       {"median_abs_error", v["median_abs_error"]},
                       {"worst_abs_error", v["worst_abs_error"]},
                       {"mean_error", v["mean_error"]},
                       {"spearman", v["spearman"]}};
          comparison.push_back(line);
          if (kind == "chosen") pol_val[role].push_back(v);
        }
      }
    }
    if (pol != selected) continue;
    // The chosen policy: write its entry values and keep its models and validation.
    for (const auto& [k, rs] : entry_rounds) {
      std::vector<double> v, pi;
      for (const auto& r : rs) v.push_back(r.median_us), pi.push_back(track.at(r.at_s, r.probe.index()));
      LutValue val;
      val.median_us = combine(v, pi, ref, pol);
      val.p10_us = val.p90_us = val.median_us;
      val.cv = rs.front().cv;
      val.count = int64_t(rs.size());
      val.rounds = int64_t(rs.size());
      val.commit = git_commit();
      store.set_entry(device, k, val, 0);
    }
    json models = json::array();
    for (const auto& [batch, ch] : choices) {
      json all = json::object();
      for (const auto& [kind, m] : ch.models) all[kind] = m.to_json();
      models.push_back({{"batch", batch}, {"model", ch.models.at(ch.best).to_json()}, {"candidates", all}});
    }
    // The spread: each held-out architecture's odd rounds against its even rounds.
    // The same for the architectures outside the space, whose larger models
    // spread more: their prediction errors are judged against it.
    auto spread_of = [&](const std::string& role) {
    json spread = json::array();
    std::map<std::string, std::vector<double>> diffs;
    for (const auto& [id, g] : groups) {
      if (g.role != role || g.total_ms.size() < 2) continue;
      std::vector<double> a, pa, b, pb;
      for (size_t i = 0; i < g.total_ms.size(); ++i) {
        (i % 2 ? b : a).push_back(g.total_ms[i]);
        (i % 2 ? pb : pa).push_back(g.probe[i]);
      }
      const double ma = combine(a, pa, ref, pol), mb = combine(b, pb, ref, pol);
      diffs[g.workload].push_back(std::abs(ma - mb) / mb);
    }
    for (auto& [w, d] : diffs) {
      const double n = double(d.size());
      spread.push_back(
          {{"workload", w},
           {"n", d.size()},
           {"within_5pct", double(std::count_if(d.begin(), d.end(), [](double x) { return x <= 0.05; })) / n},
           {"within_10pct", double(std::count_if(d.begin(), d.end(), [](double x) { return x <= 0.10; })) / n},
           {"median_abs_diff", median(d)},
           {"worst_abs_diff", *std::max_element(d.begin(), d.end())}});
    }
    return spread;
    };
    const json spread = spread_of("validate");
    chosen = {{"policy", pol},
              {"models", models},
              {"validation", pol_val.value("validate", json::array())},
              {"extrapolation", pol_val.value("extrapolate", json::array())},
              {"spread", spread},
              {"extrapolation_spread", spread_of("extrapolate")}};
  }

  const json verdict = table_verdict(chosen.value("validation", json::array()), chosen.value("spread", json::array()),
                                     drift, workloads, bar);

  json report = {{"policy", selected},
                 {"policy_requested", policy},
                 {"policy_cv", policy_cv},
                 {"probe", {{"reference_index_us", ref}, {"smoothing_s", kSmoothSeconds}}},
                 {"cache_mb", cache_mb},
                 {"drift", drift},
                 {"models", chosen.value("models", json::array())},
                 {"validation", chosen.value("validation", json::array())},
                 {"extrapolation", chosen.value("extrapolation", json::array())},
                 {"spread", chosen.value("spread", json::array())},
                 {"extrapolation_spread", chosen.value("extrapolation_spread", json::array())},
                 {"comparison", comparison},
                 {"bar", {{"within_10pct", bar.within10}, {"spearman", bar.spearman}}},
                 {"verdict", verdict},
                 {"measured_by", std::vector<std::string>(commits.begin(), commits.end())},
                 {"finalized_by", git_commit()}};
  store.set_table_report(device, dtype, runtime, report);
  store.add_validation(device, report);
  return report;
}

}  // namespace flashnas
