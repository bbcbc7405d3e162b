// `flashnas profile`: measure a latency table for this device (SQLite):
// entries, fit and held-out architectures in one interleaved session
// (profiler/session.h, search/profile_space.h), then the verdict.
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "cli/device_options.h"
#include "common/error.h"
#include "profiler/lut.h"
#include "profiler/session.h"
#include "search/config.h"
#include "search/profile_space.h"

namespace flashnas::cli {

void add_profile_command(CLI::App& app) {
  struct Opts {
    std::vector<std::string> archs, workloads, ops;
    std::string db, space, policy = kDefaultPolicy;
    SpaceProfileOptions sp;
    int rounds = 3, run_rounds = 4;
    DeviceOptions dev;
    double max_minutes = 0;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  o->sp.validate = 0;
  auto* cmd = app.add_subcommand("profile", "Measure per-operator latencies on this device into a LUT (SQLite)");
  cmd->add_option("--space", o->space,
                  "Search config (TOML): profile every operator its space can emit, at its widths, for its budgets' "
                  "workloads");
  cmd->add_option("--arch", o->archs, "ArchSpec whose operators to profile (repeatable; instead of --space)");
  cmd->add_option("--workload", o->workloads, "batch=B,prompt=P,generate=G (repeatable; with --arch, or added to --space's)");
  cmd->add_option("--validate", o->sp.validate,
                  "Held-out architectures from --space measured end to end: validation, measurement spread, verdict")
      ->capture_default_str();
  cmd->add_option("--calibrate", o->sp.fit,
                  "Architectures from --space measured end to end to fit the latency model (per batch size)")
      ->capture_default_str();
  cmd->add_option("--extrapolate", o->sp.extrapolate,
                  "Architectures outside --space (deeper, one mixer type, FFN-heavy) measured and predicted too "
                  "(with --validate)")
      ->capture_default_str();
  cmd->add_option("--rounds", o->rounds, "Measurement rounds per entry, interleaved with the architectures' over the run")
      ->capture_default_str();
  cmd->add_option("--run-rounds", o->run_rounds,
                  "Rounds for the architectures measured end to end (fit and held out alike); those past --rounds "
                  "come last")
      ->capture_default_str();
  cmd->add_option("--policy", o->policy, "How an item's rounds become one value: " + join_comma(kPolicies))
      ->capture_default_str();
  cmd->add_option("--seed", o->sp.seed, "Seed for drawing the architectures and the measuring order")->capture_default_str();
  cmd->add_option("--db", o->db, "SQLite database to create or extend")->required();
  cmd->add_option("--ops", o->ops, "Only these operator types (comma-separated); embed_head names the model's ends")
      ->delimiter(',');
  cmd->add_option("--max-minutes", o->max_minutes, "Stop after this long; rerun to resume (0: no limit)")
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "Print a JSON summary");
  o->dev.add_to(*cmd);
  cmd->callback([o] {
    DeviceInfo info;
    const MeasureOptions m = o->dev.apply(&info);
    if (o->space.empty() == o->archs.empty()) throw InputError("profile: give either --space CONFIG or --arch FILE");
    if (!o->archs.empty() && o->workloads.empty()) throw InputError("profile: --arch needs at least one --workload");
    if (o->sp.validate < 0) throw InputError("--validate: must be >= 0");
    if (o->rounds < 1) throw InputError("--rounds: must be >= 1");
    if (o->run_rounds < 2) throw InputError("--run-rounds: must be >= 2 (the measurement spread needs two)");
    if (o->sp.fit < 0) throw InputError("--calibrate: must be >= 0");
    if (o->sp.extrapolate < 0) throw InputError("--extrapolate: must be >= 0");
    if (o->max_minutes < 0 || !(o->max_minutes == o->max_minutes)) throw InputError("--max-minutes: must be >= 0");
    if (std::find(kPolicies.begin(), kPolicies.end(), o->policy) == kPolicies.end()) {
      throw InputError("--policy: must be one of " + join_comma(kPolicies) + ", got \"" + o->policy + "\"");
    }
    if (o->sp.validate > 0 && o->space.empty()) throw InputError("--validate: needs --space to draw architectures from");
    const std::string dtype = dtype_name(m.dtype), runtime = o->dev.runtime();
    for (const auto& w : o->workloads) o->sp.extra_workloads.push_back(Workload::parse(w));
    o->sp.ops = o->ops;
    SpaceProfilePlan plan;
    if (!o->space.empty()) {
      if (o->sp.validate == 0) o->sp.extrapolate = 0;
      plan = plan_space_profile(SearchConfig::load(o->space), o->sp, dtype, runtime);
    } else {
      std::vector<ArchSpec> archs;
      for (const auto& f : o->archs) archs.push_back(ArchSpec::load(f));
      plan.workloads = o->sp.extra_workloads;
      plan.entries = plan_entries(archs, plan.workloads, dtype, runtime);
      if (!o->ops.empty()) {
        std::vector<LutKey> kept;
        for (auto& k : plan.entries) {
          if (std::find(o->ops.begin(), o->ops.end(), k.op) != o->ops.end()) kept.push_back(k);
        }
        plan.entries = std::move(kept);
      }
    }
    LutStore store(o->db, true);
    const int64_t device = store.add_device(info);
    std::fprintf(stderr,
                 "profile: %s; %zu entries (%d rounds) and %zu whole-model runs (%d rounds), interleaved\n",
                 info.fingerprint().c_str(), plan.entries.size(), o->rounds, plan.runs.size(),
                 o->run_rounds);
    SessionOptions so;
    so.rounds = o->rounds;
    so.run_rounds = o->run_rounds;
    so.max_minutes = o->max_minutes;
    so.seed = o->sp.seed;
    so.run_timing.warmup = 1;
    so.run_timing.min_count = 4;
    so.run_timing.min_seconds = 0.1;
    const SessionReport r = run_session(plan.entries, plan.runs, store, device, m, so, [](const SessionProgress& p) {
      std::fprintf(stderr, "[%lld/%lld] %-64s %10.1f us  probe %6.0f us  ETA %.0fs\n", static_cast<long long>(p.done),
                   static_cast<long long>(p.todo), p.what.substr(0, 64).c_str(), p.us, p.probe.index(), p.eta_s);
    });
    json report;
    if (!r.time_limited) report = finalize_table(store, device, dtype, runtime, plan.workloads, o->policy);
    const json j = {{"db", o->db},           {"device", info.fingerprint()}, {"entries_planned", r.entries},
                    {"runs_planned", r.runs}, {"measured", r.measured},      {"skipped", r.skipped},
                    {"rounds", r.rounds},     {"run_rounds", r.run_rounds}, {"time_limited", r.time_limited}, {"seconds", r.seconds},
                    {"entries", store.count(device)}, {"report", report}};
    if (o->json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("%s: %lld entries and %lld whole-model runs, %d rounds each: %lld measured now, %lld stored before, "
                "in %.1f s%s\n",
                o->db.c_str(), static_cast<long long>(r.entries), static_cast<long long>(r.runs), r.rounds,
                static_cast<long long>(r.measured), static_cast<long long>(r.skipped), r.seconds,
                r.time_limited ? " (time limit reached: rerun to continue)" : "");
    if (!report.is_null()) std::printf("%s", report_text(report).c_str());
  });
}

}  // namespace flashnas::cli
