// `flashnas profile`: measure the LUT entries that given architectures and
// workloads need on this device, into SQLite (resumable, time-limited).
#include <cstdio>
#include <iostream>
#include <optional>
#include <set>

#include "cli/commands.h"
#include "cli/device_options.h"
#include "common/error.h"
#include "common/format.h"
#include "profiler/lut.h"
#include "profiler/validate.h"
#include "search/config.h"

namespace flashnas::cli {

void add_profile_command(CLI::App& app) {
  struct Opts {
    std::vector<std::string> archs, workloads, ops;
    std::string db, space;
    int validate = 0, rounds = 3, calibrate = 8;
    uint64_t seed = 1;
    DeviceOptions dev;
    double max_minutes = 0;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("profile", "Measure per-operator latencies on this device into a LUT (SQLite)");
  cmd->add_option("--space", o->space,
                  "Search config (TOML): profile every operator its space can emit, at its widths, for its budgets' "
                  "workloads");
  cmd->add_option("--arch", o->archs, "ArchSpec whose operators to profile (repeatable; instead of --space)");
  cmd->add_option("--workload", o->workloads, "batch=B,prompt=P,generate=G (repeatable; with --arch, or added to --space's)");
  cmd->add_option("--validate", o->validate,
                  "Then measure N held-out architectures from --space end to end and compare with the LUT's "
                  "predictions (stored in lut_validations)")
      ->capture_default_str();
  cmd->add_option("--calibrate", o->calibrate,
                  "Fit the whole-model calibration (per batch size, prefill and decode scales) on N architectures "
                  "drawn from --space, measured end to end; 0 leaves predictions as plain sums of the entries")
      ->capture_default_str();
  cmd->add_option("--rounds", o->rounds,
                  "Measurement rounds per entry (and per --validate measurement), spread over the run; the fastest "
                  "round is kept")
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed for drawing the --validate architectures")->capture_default_str();
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
    if (o->validate < 0) throw InputError("--validate: must be >= 0");
    if (o->rounds < 1) throw InputError("--rounds: must be >= 1");
    if (o->calibrate < 0) throw InputError("--calibrate: must be >= 0");
    if (o->validate > 0 && o->space.empty()) throw InputError("--validate: needs --space to draw architectures from");
    std::vector<ArchSpec> archs;
    std::vector<Workload> workloads;
    std::optional<SearchConfig> cfg;
    if (!o->space.empty()) {
      cfg = SearchConfig::load(o->space);
      archs = cfg->space.grid_archs();
      for (const auto& b : cfg->budgets) workloads.push_back(b.workload);
    }
    for (const auto& f : o->archs) archs.push_back(ArchSpec::load(f));
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
    std::fprintf(stderr, "profile: %s; %zu entries planned, %d rounds each\n", info.fingerprint().c_str(), plan.size(),
                 o->rounds);
    const ProfileReport r = run_profile(plan, store, device, m, o->max_minutes,
                                        [](int64_t done, int64_t todo, const LutKey& k, const TimingStats& s, double eta) {
                                          std::fprintf(stderr, "[%lld/%lld] %-60s %10.1f us  cv %.3f  ETA %.0fs\n",
                                                       static_cast<long long>(done), static_cast<long long>(todo),
                                                       k.describe().substr(0, 60).c_str(), s.median_us, s.cv, eta);
                                        },
                                        o->rounds);
    json validation, calibration = json::array();
    // Architectures drawn from the space: random genomes at random widths,
    // none of them a grid architecture, none used twice (the calibration set
    // and the validation set are disjoint).
    std::set<std::string> seen;
    for (const auto& a : archs) seen.insert(a.hash());
    auto draw = [&](int n, uint64_t seed) {
      std::vector<ArchSpec> out;
      Rng rng(seed);
      SearchSpace sp = cfg->space;
      sp.width_mode = SearchSpace::Width::Gene;
      for (int tries = 0; int(out.size()) < n && tries < 100 * n; ++tries) {
        ArchSpec a = sp.decode(sp.random(rng));
        if (seen.insert(a.hash()).second) out.push_back(std::move(a));
      }
      return out;
    };
    // Drawn first whatever happens next, so the validation set never includes them.
    const auto cal_archs = cfg ? draw(o->calibrate, o->seed ^ 0x5eedca11b0a7e5ULL) : std::vector<ArchSpec>{};
    bool calibrated = true;
    for (const auto& w : workloads) calibrated = calibrated && store.calibration(device, dtype_name(m.dtype), o->dev.runtime(), w.batch);
    if (cfg && o->calibrate > 0 && calibrated && r.measured == 0) {
      std::fprintf(stderr, "calibrate: kept the stored calibration (no entry was measured in this run)\n");
    } else if (cfg && o->calibrate > 0 && !r.time_limited) {
      std::fprintf(stderr, "calibrate: %zu architectures x %zu workloads, measured end to end\n", cal_archs.size(),
                   workloads.size());
      const auto fits = calibrate_lut(cal_archs, workloads, store, device, m, dtype_name(m.dtype), o->dev.runtime(),
                                      o->rounds, [](int64_t done, int64_t total) {
                                        std::fprintf(stderr, "\r[%lld/%lld]", static_cast<long long>(done),
                                                     static_cast<long long>(total));
                                      });
      std::fprintf(stderr, "\n");
      for (const auto& [batch, c] : fits) {
        calibration.push_back({{"batch", batch}, {"prefill_scale", c.prefill_scale}, {"decode_scale", c.decode_scale}});
        if (!o->json) {
          std::printf("calibration batch=%lld: prefill x%.3f, decode x%.3f (%lld architectures)\n",
                      static_cast<long long>(batch), c.prefill_scale, c.decode_scale, static_cast<long long>(c.archs));
        }
      }
    }
    if (o->validate > 0 && !r.time_limited) {
      const std::vector<ArchSpec> held = draw(o->validate, o->seed);
      std::fprintf(stderr, "validate: %zu held-out architectures x %zu workloads, measured end to end\n", held.size(),
                   workloads.size());
      const ValidationReport rep = validate_lut(
          held, workloads, store, device, m, dtype_name(m.dtype), o->dev.runtime(), o->rounds,
          [](int64_t done, int64_t total, const ValidationRow& row) {
            std::fprintf(stderr, "[%lld/%lld] %-48s predicted %8.2f ms  measured %8.2f ms  %+6.1f%%\n",
                         static_cast<long long>(done), static_cast<long long>(total), row.arch.substr(0, 48).c_str(),
                         row.predicted_ms, row.measured_ms, 100 * row.error());
          });
      validation = rep.to_json();
      validation["space"] = o->space;
      validation["seed"] = o->seed;
      // The previous validation of the same architectures, if any: how far
      // two measurements of the same model lie apart on this machine.
      const auto previous = store.validations(device);
      for (auto it = previous.rbegin(); it != previous.rend(); ++it) {
        if (it->value("space", "") != o->space || it->value("seed", uint64_t(0)) != o->seed) continue;
        validation["spread_vs_previous"] = measurement_spread(rep, *it);
        break;
      }
      store.add_validation(device, validation);
      if (!o->json) {
        std::printf("%s", rep.table().c_str());
        for (const auto& sp : validation.value("spread_vs_previous", json::array())) {
          std::printf("measurement spread vs the previous validation run, %s, %d architectures measured twice: %.0f%% "
                      "within +-5%%, %.0f%% within +-10%%, median |difference| %.1f%%, worst %.1f%%\n",
                      sp["workload"].get<std::string>().c_str(), sp["n"].get<int>(), 100 * sp["within_5pct"].get<double>(),
                      100 * sp["within_10pct"].get<double>(), 100 * sp["median_abs_diff"].get<double>(),
                      100 * sp["worst_abs_diff"].get<double>());
        }
      }
    } else if (o->validate > 0) {
      std::fprintf(stderr, "validate: skipped, the table is not complete yet (rerun to continue)\n");
    }
    const json j = {{"db", o->db},          {"device", info.fingerprint()}, {"planned", r.planned},
                    {"measured", r.measured}, {"skipped", r.skipped},      {"time_limited", r.time_limited},
                    {"seconds", r.seconds},   {"entries", store.count(device)}, {"validation", validation}, {"calibration", calibration}};
    if (o->json) {
      std::cout << j.dump(2) << "\n";
    } else {
      std::printf("%s: %lld entries planned, %d rounds each: %lld rounds measured, %lld entries already complete, "
                  "in %.1f s%s\n",
                  o->db.c_str(), static_cast<long long>(r.planned), r.rounds, static_cast<long long>(r.measured),
                  static_cast<long long>(r.skipped), r.seconds,
                  r.time_limited ? " (time limit reached: rerun to continue)" : "");
    }
  });
}

}  // namespace flashnas::cli
