#include "search/profile_space.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "common/error.h"
#include "common/stop.h"
#include "profiler/measure.h"
#include "profiler/verdict.h"

namespace flashnas {
namespace {

// Random genomes at random widths, none of them in `seen` (which grows).
std::vector<ArchSpec> draw(const SearchSpace& space, int n, uint64_t seed, std::set<std::string>& seen) {
  std::vector<ArchSpec> out;
  Rng rng(seed);
  SearchSpace sp = space;
  sp.width_mode = SearchSpace::Width::Gene;
  for (int tries = 0; int(out.size()) < n && tries < 100 * n; ++tries) {
    ArchSpec a = sp.decode(sp.random(rng));
    if (seen.insert(a.hash()).second) out.push_back(std::move(a));
  }
  return out;
}

ArchSpec rebuild(const ArchSpec& like, std::vector<LayerSpec> layers, const std::string& name) {
  json doc = like.to_json();
  json ls = json::array();
  for (const auto& l : layers) {
    json j = l.hp;
    j["type"] = l.type;
    ls.push_back(j);
  }
  doc["layers"] = ls;
  doc["name"] = name;
  return ArchSpec::from_json(doc, name);
}

// The entries of the operators in `ops` (--ops); an operator the plan does
// not hold is an error naming the ones it does.
std::vector<LutKey> only_ops(std::vector<LutKey> entries, const std::vector<std::string>& ops) {
  std::set<std::string> planned;
  for (const auto& k : entries) planned.insert(k.op);
  for (const auto& op : ops) {
    if (planned.count(op) == 0) {
      throw InputError("--ops: \"" + op + "\" is not an operator of this plan; it has " +
                       join_comma(std::vector<std::string>(planned.begin(), planned.end())));
    }
  }
  std::vector<LutKey> kept;
  for (auto& k : entries) {
    if (std::find(ops.begin(), ops.end(), k.op) != ops.end()) kept.push_back(std::move(k));
  }
  return kept;
}

}  // namespace

std::vector<std::pair<std::string, ArchSpec>> outside_archs(const SearchSpace& space, int n, uint64_t seed) {
  // Each operator type's layer at each width, from the profiler's grid.
  std::map<std::pair<int64_t, std::string>, LayerSpec> layer_at;
  for (const auto& g : space.grid_archs()) {
    for (const auto& l : g.layers) layer_at.emplace(std::make_pair(g.d_model, l.type), l);
  }
  std::vector<std::string> mixers;
  for (const auto& t : space.op_types()) {
    if (t != "ffn") mixers.push_back(t);
  }
  std::vector<std::pair<std::string, ArchSpec>> out;
  std::set<std::string> seen;
  Rng rng(seed ^ 0x0075151de5ULL);
  SearchSpace sp = space;
  sp.width_mode = SearchSpace::Width::Gene;
  for (int i = 0; i < n; ++i) {
    Genome g = sp.random(rng);
    const int kind = i % 3;
    if (kind == 2 && !sp.ffn_choices.empty()) {
      const int most = *std::max_element(sp.ffn_choices.begin(), sp.ffn_choices.end());
      for (auto& s : g.stages) s.ffn = most;
      for (auto& l : g.layers) l.ffn = most;
    }
    const ArchSpec a = sp.decode(g);
    std::vector<LayerSpec> layers;
    std::string label;
    if (kind == 0) {  // deep: twice the deepest the space allows
      const size_t target = size_t(2 * sp.max_operators);
      while (layers.size() < target) {
        for (const auto& l : a.layers) layers.push_back(l);
      }
      layers.resize(target);
      label = "deep-" + std::to_string(target);
    } else if (kind == 1) {  // mono: one mixer type everywhere
      const std::string& m = mixers[size_t(i / 3) % mixers.size()];
      for (const auto& l : a.layers) layers.push_back(l.type == "ffn" ? l : layer_at.at({a.d_model, m}));
      label = "mono-" + m;
    } else {  // ffn-heavy: every FFN doubled
      for (const auto& l : a.layers) {
        layers.push_back(l);
        if (l.type == "ffn") layers.push_back(l);
      }
      label = "ffn-heavy";
    }
    label += "-d" + std::to_string(a.d_model);
    ArchSpec x = rebuild(a, std::move(layers), label);
    if (seen.insert(x.hash()).second) out.emplace_back(label, std::move(x));
  }
  return out;
}

SpaceProfilePlan plan_space_profile(const SearchConfig& cfg, const SpaceProfileOptions& o, const std::string& dtype,
                                    const std::string& runtime) {
  if (o.fit < 0) throw InputError("--calibrate: must be >= 0");
  if (o.validate < 0) throw InputError("--validate: must be >= 0");
  if (o.extrapolate < 0) throw InputError("--extrapolate: must be >= 0");
  SpaceProfilePlan plan;
  for (const auto& b : cfg.budgets) plan.workloads.push_back(b.workload);
  for (const auto& w : o.extra_workloads) plan.workloads.push_back(w);
  const std::vector<ArchSpec> grid = cfg.space.grid_archs();
  std::set<std::string> seen;
  for (const auto& a : grid) seen.insert(a.hash());
  // Drawn in a fixed order (fit first) so that the sets stay the same across
  // reruns of the same seed and never overlap.
  const auto fit = draw(cfg.space, o.fit, o.seed ^ 0x5eedca11b0a7e5ULL, seen);
  const auto held = draw(cfg.space, o.validate, o.seed, seen);
  const auto outside = outside_archs(cfg.space, o.extrapolate, o.seed);
  // A few outside architectures (other draws) join the fit set, so that the
  // latency model sees models larger and less mixed than the space's; the
  // extrapolate set stays held out.
  const auto outside_fit = outside_archs(cfg.space, o.fit / 5, o.seed ^ 0xf17f17f17ULL);
  std::set<std::string> held_out;
  for (const auto& a : held) held_out.insert(a.hash());
  for (const auto& [label, a] : outside) held_out.insert(a.hash());
  std::vector<ArchSpec> all = grid;
  for (const auto& [label, a] : outside) all.push_back(a);
  for (const auto& [label, a] : outside_fit) all.push_back(a);
  plan.entries = plan_entries(all, plan.workloads, dtype, runtime);
  if (!o.ops.empty()) {
    plan.entries = only_ops(std::move(plan.entries), o.ops);
    return plan;  // a partial table: no whole-model runs (they need every operator)
  }
  for (const auto& w : plan.workloads) {
    for (const auto& a : fit) plan.runs.push_back(ModelRunSpec{"fit", a, w, a.short_hash()});
    for (const auto& [label, a] : outside_fit) {
      if (held_out.count(a.hash()) == 0) plan.runs.push_back(ModelRunSpec{"fit", a, w, label});
    }
    for (const auto& a : held) plan.runs.push_back(ModelRunSpec{"validate", a, w, a.short_hash()});
    for (const auto& [label, a] : outside) plan.runs.push_back(ModelRunSpec{"extrapolate", a, w, label});
  }
  return plan;
}

ProfileSummary run_profile_request(ProfileRequest r, const DeviceInfo& info, const MeasureOptions& m, const std::string& runtime,
                         const std::function<void(const std::string&)>& log,
                         const std::function<void(const SessionProgress&)>& progress) {
  if (r.space.empty() == r.archs.empty()) throw InputError("profile: give either --space CONFIG or --arch FILE");
  if (!r.archs.empty() && r.workloads.empty()) throw InputError("profile: --arch needs at least one --workload");
  if (r.sp.validate < 0) throw InputError("--validate: must be >= 0");
  if (r.rounds < 1) throw InputError("--rounds: must be >= 1");
  if (r.run_rounds < 2) throw InputError("--run-rounds: must be >= 2 (the measurement spread needs two)");
  if (r.sp.fit < 0) throw InputError("--calibrate: must be >= 0");
  if (r.sp.extrapolate < 0) throw InputError("--extrapolate: must be >= 0");
  if (!(r.max_minutes >= 0) || !std::isfinite(r.max_minutes)) {
    throw InputError("--max-minutes: must be a finite number >= 0 (0: no limit)");
  }
  if (r.policy != "auto" && std::find(kPolicies.begin(), kPolicies.end(), r.policy) == kPolicies.end()) {
    throw InputError("--policy: must be auto or one of " + join_comma(kPolicies) + ", got \"" + r.policy + "\"");
  }
  if (r.sp.validate > 0 && r.space.empty()) throw InputError("--validate: needs --space to draw architectures from");
  MeasureOptions mo = m;
  for (const auto& w : r.workloads) r.sp.extra_workloads.push_back(Workload::parse(w));
  SpaceProfilePlan plan;
  if (!r.space.empty()) {
    if (r.sp.validate == 0) r.sp.extrapolate = 0;
    const SearchConfig cfg = SearchConfig::load(r.space);
    // The table a search of this config will look for: the config's
    // [latency] dtype and runtime, unless --dtype says otherwise (then it must agree).
    if (!r.dtype_given) {
      mo.dtype = parse_dtype(cfg.dtype, r.space.string() + ": [latency] dtype");
    } else if (dtype_name(mo.dtype) != cfg.dtype) {
      throw InputError("--dtype " + dtype_name(mo.dtype) + ": " + r.space.string() + " prices candidates with [latency] dtype = \"" +
                       cfg.dtype + "\", so its search would never use this table; leave --dtype out (the config's is used) or change the config");
    }
    if (cfg.runtime != runtime) {
      throw InputError("--runtime " + runtime + ": " + r.space.string() + " prices candidates with [latency] runtime = \"" +
                       cfg.runtime + "\"; profile with --runtime " + cfg.runtime + " or change the config");
    }
    plan = plan_space_profile(cfg, r.sp, dtype_name(mo.dtype), runtime);
  } else {
    const std::string dtype = dtype_name(mo.dtype);
    std::vector<ArchSpec> archs;
    for (const auto& f : r.archs) archs.push_back(ArchSpec::load(f));
    plan.workloads = r.sp.extra_workloads;
    plan.entries = plan_entries(archs, plan.workloads, dtype, runtime);
    if (!r.sp.ops.empty()) plan.entries = only_ops(std::move(plan.entries), r.sp.ops);
  }
  LutStore store(r.db, true);
  const int64_t device = store.add_device(info);
  log("profile: " + info.fingerprint() + "; " + std::to_string(plan.entries.size()) + " entries (" +
      std::to_string(r.rounds) + " rounds) and " + std::to_string(plan.runs.size()) + " whole-model runs (" +
      std::to_string(r.run_rounds) + " rounds), interleaved");
  SessionOptions so;
  so.rounds = r.rounds;
  so.run_rounds = r.run_rounds;
  so.max_minutes = r.max_minutes;
  so.seed = r.sp.seed;
  so.run_timing.warmup = 1;
  so.run_timing.min_count = 4;
  so.run_timing.min_seconds = 0.1;
  // Entries: one warm-up, 5 samples and 50 ms, no re-measuring of a noisy
  // sample. On a 2-core VM the default rule (0.2 s, up to 3 attempts while
  // the samples' CV exceeded 10%) spent 198 of a 417 s profile on entries,
  // 45% of them using all 3 attempts; refitting the same table from only the
  // first 50 ms of each entry's samples changed no validation figure
  // (README, "Latency predictions": profiling time).
  TimingOptions entry;
  entry.warmup = 1;
  entry.min_count = 5;
  entry.min_seconds = 0.05;
  so.entry_timing = entry;
  so.entry_attempts = 1;
  const SessionReport rep = run_session(plan.entries, plan.runs, store, device, mo, so, progress);
  if (rep.stopped) {
    throw_if_stopped("profile: " + r.db.string() + ": stopped after " + std::to_string(rep.measured) +
                     " measurements, every one committed; rerun the same command to resume");
  }
  ProfileSummary sum;
  if (!rep.time_limited) sum.report = finalize_table(store, device, dtype_name(mo.dtype), runtime, plan.workloads, r.policy);
  sum.db = r.db;
  sum.device = info.fingerprint();
  sum.entries_planned = rep.entries;
  sum.runs_planned = rep.runs;
  sum.measured = rep.measured;
  sum.skipped = rep.skipped;
  sum.rounds = rep.rounds;
  sum.run_rounds = rep.run_rounds;
  sum.time_limited = rep.time_limited;
  sum.seconds = rep.seconds;
  sum.entries = store.count(device);
  return sum;
}

json ProfileSummary::to_json() const {
  return json{{"db", db.string()},     {"device", device},         {"entries_planned", entries_planned},
              {"runs_planned", runs_planned}, {"measured", measured}, {"skipped", skipped},
              {"rounds", rounds},      {"run_rounds", run_rounds}, {"time_limited", time_limited},
              {"seconds", seconds},    {"entries", entries},       {"report", report}};
}

std::string ProfileSummary::text() const {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                ": %lld entries and %lld whole-model runs, %d rounds each: %lld measured now, %lld stored before, in %.1f s%s\n",
                static_cast<long long>(entries_planned), static_cast<long long>(runs_planned), rounds,
                static_cast<long long>(measured), static_cast<long long>(skipped), seconds,
                time_limited ? " (time limit reached: rerun to continue)" : "");
  return db.string() + buf + (report.is_null() ? std::string() : report_text(report));
}

}  // namespace flashnas
