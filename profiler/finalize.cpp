#include "profiler/finalize.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "common/error.h"
#include "common/format.h"
#include "common/stats.h"
#include "common/version.h"
#include "profiler/lut_table.h"
#include "profiler/latency_model.h"
#include "profiler/measure.h"
#include "profiler/predict.h"
#include "profiler/probe.h"
#include "profiler/validate.h"

namespace flashnas {
namespace {

using EntryRounds = std::vector<std::pair<LutKey, std::vector<EntryRound>>>;

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

// The probe over the whole table: its smoothed track, the reference speed
// (the median reading), the drift (how far the readings spread around the
// reference) and the builds that measured the runs.
struct Probe {
  ProbeTrack track;
  double ref = 0;
  json drift = json::object();
  std::set<std::string> commits;
};

Probe read_probe(const EntryRounds& entry_rounds, const std::vector<RunRow>& run_rows) {
  Probe p;
  std::vector<double> readings;
  for (const auto& [k, rs] : entry_rounds) {
    for (const auto& r : rs) readings.push_back(r.probe.index()), p.track.add(r.at_s, r.probe.index());
  }
  for (const auto& r : run_rows) {
    readings.push_back(r.probe.index());
    p.track.add(r.at_s, r.probe.index());
    p.commits.insert(r.commit);
  }
  p.track.done();
  if (readings.empty()) return p;
  const double ref = p.ref = median(readings);
  p.drift = {{"readings", readings.size()},
             {"reference_index_us", ref},
             {"p10_ratio", quantile(readings, 0.1) / ref},
             {"p90_ratio", quantile(readings, 0.9) / ref},
             {"min_ratio", *std::min_element(readings.begin(), readings.end()) / ref},
             {"max_ratio", *std::max_element(readings.begin(), readings.end()) / ref}};
  std::vector<double> smooth;
  for (const auto& [at, idx] : p.track.points()) smooth.push_back(p.track.at(at, idx));
  if (!smooth.empty()) {
    // The drift proper: the smoothed speed's range over the run.
    p.drift["smoothed_min_ratio"] = *std::min_element(smooth.begin(), smooth.end()) / ref;
    p.drift["smoothed_max_ratio"] = *std::max_element(smooth.begin(), smooth.end()) / ref;
    p.drift["p90_over_p10"] = quantile(smooth, 0.9) / quantile(smooth, 0.1);
    p.drift["seconds"] = p.track.points().back().first - p.track.points().front().first;
  }
  return p;
}

// The rounds of one whole-model run: (role, architecture, workload).
struct RunGroup {
  std::string role, hash, workload;
  ArchSpec arch;
  Workload w;
  std::vector<double> total_ms, probe;  // per round; probe: the smoothed index around it
};

std::map<std::string, RunGroup> group_runs(const std::vector<RunRow>& run_rows, const ProbeTrack& track) {
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
  return groups;
}

// One policy's entry values with the runs' measured values, and the latency
// model chosen per batch size on the fit runs with its cross-validated error.
struct Fitted {
  LutTable table;
  std::map<std::string, double> measured;  // group id -> ms
  std::map<int64_t, ModelChoice> choices;  // per batch size
  double cv = 0;                           // mean over batch sizes of the chosen model's CV error
  json cv_per_batch = json::object();
};

// The value of every entry under `policy`.
std::vector<std::pair<LutKey, double>> entry_values(const EntryRounds& entry_rounds, const Probe& probe,
                                                    const std::string& policy) {
  std::vector<std::pair<LutKey, double>> out;
  for (const auto& [k, rs] : entry_rounds) {
    std::vector<double> v, pi;
    for (const auto& r : rs) v.push_back(r.median_us), pi.push_back(probe.track.at(r.at_s, r.probe.index()));
    out.emplace_back(k, combine(v, pi, probe.ref, policy));
  }
  return out;
}

Fitted fit_policy(const std::string& policy, const LutTable& base, const EntryRounds& entry_rounds, const Probe& probe,
                  const std::map<std::string, RunGroup>& groups, double cache_mb) {
  Fitted f{base, {}, {}, 0, json::object()};
  for (const auto& [k, v] : entry_values(entry_rounds, probe, policy)) f.table.set(k, v);
  std::map<int64_t, std::vector<FitRow>> fit_rows;
  for (const auto& [id, g] : groups) {
    f.measured[id] = combine(g.total_ms, g.probe, probe.ref, policy);
    if (g.role != "fit") continue;
    FitRow row = predict(g.arch, g.w, f.table, false).row;
    row.measured_ms = f.measured[id];
    fit_rows[g.w.batch].push_back(row);
  }
  for (const auto& [batch, rows] : fit_rows) {
    f.choices[batch] = choose_model(rows, cache_mb);
    const double e = f.choices[batch].models.at(f.choices[batch].best).cv_error;
    f.cv_per_batch[std::to_string(batch)] = e;
    f.cv += e / double(fit_rows.size());
  }
  return f;
}

json validation_json(const std::string& workload, const std::vector<ValidationRow>& rows) {
  WorkloadValidation v;
  v.workload = Workload::parse(workload, "stored run");
  v.rows = rows;
  summarize_validation(v);
  return v.to_json();
}

// Held-out accuracy of every model kind ("sum", "scale", "nnls" and the
// chosen one) per role and workload under one policy: a line per
// (kind, role, workload) appended to `comparison`; the chosen model's
// validation per role returned.
json validate_policy(const std::string& policy, const Fitted& f, const std::map<std::string, RunGroup>& groups,
                     json& comparison) {
  json pol_val = json::object();
  // The entry sums of every held-out run, once; each model kind applies to them.
  std::map<std::string, FitRow> raw_rows;
  for (const auto& [id, g] : groups) {
    if (g.role != "fit") raw_rows[id] = predict(g.arch, g.w, f.table, false).row;
  }
  for (const std::string& kind : {std::string("sum"), std::string("scale"), std::string("nnls"), std::string("chosen")}) {
    std::map<std::string, std::map<std::string, std::vector<ValidationRow>>> by;  // role -> workload -> rows
    for (const auto& [id, g] : groups) {
      if (g.role == "fit") continue;
      const FitRow& row = raw_rows.at(id);
      double pred = row.prefill_raw_ms + row.decode_raw_ms;
      auto c = f.choices.find(g.w.batch);
      if (c != f.choices.end()) {
        const std::string k = kind == "chosen" ? c->second.best : kind;
        auto m = c->second.models.find(k);
        if (m == c->second.models.end()) continue;
        pred = m->second.apply(row);
      } else if (kind != "sum" && kind != "chosen") {
        continue;
      }
      by[g.role][g.workload].push_back(
          ValidationRow{g.arch.name.empty() ? g.hash.substr(0, 12) : g.arch.name, g.hash, pred, f.measured.at(id)});
    }
    for (const auto& [role, per_w] : by) {
      for (const auto& [w, rows] : per_w) {
        json v = validation_json(w, rows);
        json line = {{"policy", policy}, {"model", kind}, {"role", role}, {"workload", w}};
        for (const char* key : {"n", "within_5pct", "within_10pct", "median_abs_error", "worst_abs_error", "mean_error",
                                "spearman"}) {
          line[key] = v[key];
        }
        comparison.push_back(line);
        if (kind == "chosen") pol_val[role].push_back(v);
      }
    }
  }
  return pol_val;
}

// The measurement spread of one role's architectures: each one's odd rounds
// against its even rounds, per workload. (For the architectures outside the
// space, whose larger models spread more, their prediction errors are judged
// against their own spread.)
json spread_of(const std::map<std::string, RunGroup>& groups, const std::string& role, double ref,
               const std::string& policy) {
  std::map<std::string, std::vector<double>> diffs;
  for (const auto& [id, g] : groups) {
    if (g.role != role || g.total_ms.size() < 2) continue;
    std::vector<double> a, pa, b, pb;
    for (size_t i = 0; i < g.total_ms.size(); ++i) {
      (i % 2 ? b : a).push_back(g.total_ms[i]);
      (i % 2 ? pb : pa).push_back(g.probe[i]);
    }
    const double ma = combine(a, pa, ref, policy), mb = combine(b, pb, ref, policy);
    diffs[g.workload].push_back(std::abs(ma - mb) / mb);
  }
  json spread = json::array();
  for (auto& [w, d] : diffs) {
    const double n = double(d.size());
    spread.push_back({{"workload", w},
                      {"n", d.size()},
                      {"within_5pct", double(std::count_if(d.begin(), d.end(), [](double x) { return x <= 0.05; })) / n},
                      {"within_10pct", double(std::count_if(d.begin(), d.end(), [](double x) { return x <= 0.10; })) / n},
                      {"median_abs_diff", median(d)},
                      {"worst_abs_diff", *std::max_element(d.begin(), d.end())}});
  }
  return spread;
}

// Stores the chosen policy's entry values.
void write_entries(LutStore& store, int64_t device, const EntryRounds& entry_rounds, const Probe& probe,
                   const std::string& policy) {
  const auto values = entry_values(entry_rounds, probe, policy);
  for (size_t i = 0; i < values.size(); ++i) {
    const auto& rs = entry_rounds[i].second;
    LutValue val;
    val.median_us = values[i].second;
    val.p10_us = val.p90_us = val.median_us;
    val.cv = rs.front().cv;
    val.count = int64_t(rs.size());
    val.rounds = int64_t(rs.size());
    val.commit = git_commit();
    store.set_entry(device, values[i].first, val, 0);
  }
}

json models_json(const std::map<int64_t, ModelChoice>& choices) {
  json models = json::array();
  for (const auto& [batch, ch] : choices) {
    json all = json::object();
    for (const auto& [kind, m] : ch.models) all[kind] = m.to_json();
    models.push_back({{"batch", batch}, {"model", ch.models.at(ch.best).to_json()}, {"candidates", all}});
  }
  return models;
}

}  // namespace

json finalize_table(LutStore& store, int64_t device, const std::string& dtype, const std::string& runtime,
                    const std::vector<Workload>& workloads, const std::string& policy, const Bar& bar) {
  if (policy != "auto" && std::find(kPolicies.begin(), kPolicies.end(), policy) == kPolicies.end()) {
    throw InputError("policy \"" + policy + "\": must be auto or one of " + join_comma(kPolicies));
  }
  const EntryRounds entry_rounds = store.all_rounds(device, dtype, runtime);
  const auto run_rows = store.runs(device, dtype, runtime);
  const Probe probe = read_probe(entry_rounds, run_rows);
  const double cache_mb = double(rotation_bytes(read_cpu_caches(), at::get_num_threads())) / 1e6;
  const std::map<std::string, RunGroup> groups = group_runs(run_rows, probe.track);

  // Every policy: its table and its models fitted on the fit runs, with their
  // cross-validated error (which chooses the policy under "auto").
  const LutTable base = LutTable::load(store, device, dtype, runtime);
  std::map<std::string, Fitted> fitted;
  json policy_cv = json::object();
  for (const std::string& pol : kPolicies) {
    const Fitted& f = fitted.emplace(pol, fit_policy(pol, base, entry_rounds, probe, groups, cache_mb)).first->second;
    policy_cv[pol] = {{"mean", f.cv}, {"batches", f.cv_per_batch}};
  }
  std::string selected = policy;
  if (policy == "auto") {
    selected = kPolicies.front();
    for (const auto& pol : kPolicies) {
      if (fitted.at(pol).cv < fitted.at(selected).cv) selected = pol;
    }
  }
  json comparison = json::array(), chosen;
  for (const std::string& pol : kPolicies) {
    const json pol_val = validate_policy(pol, fitted.at(pol), groups, comparison);
    if (pol != selected) continue;
    write_entries(store, device, entry_rounds, probe, pol);
    chosen = {{"policy", pol},
              {"models", models_json(fitted.at(pol).choices)},
              {"validation", pol_val.value("validate", json::array())},
              {"extrapolation", pol_val.value("extrapolate", json::array())},
              {"spread", spread_of(groups, "validate", probe.ref, pol)},
              {"extrapolation_spread", spread_of(groups, "extrapolate", probe.ref, pol)}};
  }

  const json verdict = table_verdict(chosen.value("validation", json::array()), chosen.value("spread", json::array()),
                                     probe.drift, workloads, bar);
  json report = {{"policy", selected},
                 {"policy_requested", policy},
                 {"policy_cv", policy_cv},
                 {"probe", {{"reference_index_us", probe.ref}, {"smoothing_s", kSmoothSeconds}}},
                 {"cache_mb", cache_mb},
                 {"drift", probe.drift},
                 {"models", chosen.value("models", json::array())},
                 {"validation", chosen.value("validation", json::array())},
                 {"extrapolation", chosen.value("extrapolation", json::array())},
                 {"spread", chosen.value("spread", json::array())},
                 {"extrapolation_spread", chosen.value("extrapolation_spread", json::array())},
                 {"comparison", comparison},
                 {"bar", {{"within_10pct", bar.within10}, {"spearman", bar.spearman}}},
                 {"verdict", verdict},
                 {"measured_by", std::vector<std::string>(probe.commits.begin(), probe.commits.end())},
                 {"finalized_by", git_commit()}};
  store.set_table_report(device, dtype, runtime, report);
  store.add_validation(device, report);
  return report;
}

}  // namespace flashnas
