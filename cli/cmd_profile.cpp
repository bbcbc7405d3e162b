// `flashnas profile`: measure the LUT entries that given architectures and
// workloads need on this device, into SQLite (resumable, time-limited).
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "cli/device_options.h"
#include "common/error.h"
#include "common/format.h"
#include "profiler/lut.h"

namespace flashnas::cli {

void add_profile_command(CLI::App& app) {
  struct Opts {
    std::vector<std::string> archs, workloads, ops;
    std::string db;
    DeviceOptions dev;
    double max_minutes = 0;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("profile", "Measure per-operator latencies on this device into a LUT (SQLite)");
  cmd->add_option("--arch", o->archs, "ArchSpec whose operators to profile (repeatable)")->required();
  cmd->add_option("--workload", o->workloads, "batch=B,prompt=P,generate=G (repeatable)")->required();
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
    std::vector<ArchSpec> archs;
    for (const auto& f : o->archs) archs.push_back(ArchSpec::load(f));
    std::vector<Workload> workloads;
    for (const auto& w : o->workloads) workloads.push_back(Workload::parse(w));
    std::vector<LutKey> plan = plan_entries(archs, workloads, dtype_name(m.dtype), o->dev.runtime());
    if (!o->ops.empty()) {
      std::vector<LutKey> kept;
      for (auto& k : plan) {
        if (std::find(o->ops.begin(), o->ops.end(), k.op) != o->ops.end()) kept.push_back(k);
      }
      plan = std::move(kept);
    }
    LutStore store(o->db, true);
    const int64_t device = store.add_device(info);
    std::fprintf(stderr, "profile: %s; %zu entries planned\n", info.fingerprint().c_str(), plan.size());
    const ProfileReport r = run_profile(plan, store, device, m, o->max_minutes,
                                        [](int64_t done, int64_t todo, const LutKey& k, const TimingStats& s, double eta) {
                                          std::fprintf(stderr, "[%lld/%lld] %-60s %10.1f us  cv %.3f  ETA %.0fs\n",
                                                       static_cast<long long>(done), static_cast<long long>(todo),
                                                       k.describe().substr(0, 60).c_str(), s.median_us, s.cv, eta);
                                        });
    const json j = {{"db", o->db},          {"device", info.fingerprint()}, {"planned", r.planned},
                    {"measured", r.measured}, {"skipped", r.skipped},      {"time_limited", r.time_limited},
                    {"seconds", r.seconds},   {"entries", store.count(device)}};
    if (o->json) {
      std::cout << j.dump(2) << "\n";
    } else {
      std::printf("%s: measured %lld, already present %lld, of %lld planned, in %.1f s%s\n", o->db.c_str(),
                  static_cast<long long>(r.measured), static_cast<long long>(r.skipped),
                  static_cast<long long>(r.planned), r.seconds,
                  r.time_limited ? " (time limit reached: rerun to continue)" : "");
    }
  });
}

}  // namespace flashnas::cli
