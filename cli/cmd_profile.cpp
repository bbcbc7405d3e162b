// `flashnas profile`: measure a latency table for this device (SQLite):
// entries, fit and held-out architectures in one interleaved session
// (profiler/session.h, search/profile_space.h), then the verdict.
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "cli/device_options.h"
#include "common/stop.h"
#include "profiler/session.h"
#include "search/profile_space.h"

namespace flashnas::cli {

void add_profile_command(CLI::App& app) {
  struct Opts {
    ProfileRequest r;
    std::string db, space;
    DeviceOptions dev;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto& r = o->r;
  auto* cmd = app.add_subcommand("profile", "Measure per-operator latencies on this device into a LUT (SQLite)");
  cmd->add_option("--space", o->space,
                  "Search config (TOML): profile every operator its space can emit, at its widths, for its budgets' "
                  "workloads");
  cmd->add_option("--arch", r.archs, "ArchSpec whose operators to profile (repeatable; instead of --space)");
  cmd->add_option("--workload", r.workloads, "batch=B,prompt=P,generate=G (repeatable; with --arch, or added to --space's)");
  cmd->add_option("--validate", r.sp.validate,
                  "Held-out architectures from --space measured end to end: validation, measurement spread, verdict")
      ->capture_default_str();
  cmd->add_option("--calibrate", r.sp.fit, "Architectures from --space measured end to end to fit the latency model")
      ->capture_default_str();
  cmd->add_option("--extrapolate", r.sp.extrapolate,
                  "Architectures outside --space (deeper, one mixer type, FFN-heavy) measured and predicted too "
                  "(with --validate)")
      ->capture_default_str();
  cmd->add_option("--rounds", r.rounds, "Measurement rounds per entry, interleaved with the architectures' over the run")
      ->capture_default_str();
  cmd->add_option("--run-rounds", r.run_rounds,
                  "Rounds for the architectures measured end to end (fit and held out alike); those past --rounds "
                  "come last")
      ->capture_default_str();
  cmd->add_option("--policy", r.policy, "How an item's rounds become one value: " + join_comma(kPolicies) +
                      ", or auto (the one whose latency model cross-validates best on the fit runs)")
      ->capture_default_str();
  cmd->add_option("--seed", r.sp.seed, "Seed for drawing the architectures and the measuring order")->capture_default_str();
  cmd->add_option("--db", o->db, "Database to create or extend: a SQLite file, or postgresql://user@host:port/dbname")->required();
  cmd->add_option("--ops", r.sp.ops, "Only these operator types (comma-separated); embed_head names the model's ends")
      ->delimiter(',');
  cmd->add_option("--max-minutes", r.max_minutes, "Stop after this long; rerun to resume (0: no limit)")
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "Print a JSON summary");
  o->dev.add_to(*cmd);
  cmd->callback([o, cmd] {
    const StopSignals stop_on_signals;
    DeviceInfo info;
    const MeasureOptions m = o->dev.apply(&info);
    o->r.db = o->db;
    o->r.space = o->space;
    o->r.dtype_given = cmd->count("--dtype") > 0;
    const ProfileSummary sum = run_profile_request(
        o->r, info, m, o->dev.runtime(), [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); },
        [](const SessionProgress& p) {
          std::fprintf(stderr, "[%lld/%lld] %-64s %10.1f us  probe %6.0f us  ETA %.0fs\n", static_cast<long long>(p.done),
                       static_cast<long long>(p.todo), p.what.substr(0, 64).c_str(), p.us, p.probe.index(), p.eta_s);
        });
    if (o->json) {
      std::cout << sum.to_json().dump(2) << "\n";
      return;
    }
    std::fputs(sum.text().c_str(), stdout);
  });
}

}  // namespace flashnas::cli
