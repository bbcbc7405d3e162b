// A profiling session: LUT entries and whole-model runs measured in the same
// interleaved rounds, the machine-speed probe read between every two items,
// then the table finalised from what was stored.
//
// Why: on a shared machine the speed moves over minutes. Entries measured in
// one spell and the architectures they are checked against in another do not
// agree. Interleaving makes every kind of measurement see the same machine;
// the probe says how fast the machine was at each moment, so every value can
// be normalised to one reference speed (the median probe reading of the
// table), and the drift is reported.
//
// Rounds: every item gets round 1 before any gets round 2. Each round of each
// item is committed on its own (with its probe reading), so a killed run
// resumes where it stopped.
//
// Finalising (finalize_table): per item, its rounds combined by the table's
// policy (see kPolicies); the latency model fitted per batch size on the
// "fit" runs (latency_model.h); the "validate" runs (held out) and the
// "extrapolate" runs (outside the space: deeper, unusual mixes) predicted
// and compared; the measurement spread (each validation architecture's odd
// rounds against its even rounds); the verdict per workload. All of it is
// stored in lut_tables and returned.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "profiler/lut.h"
#include "profiler/lut_table.h"
#include "profiler/measure.h"
#include "profiler/verdict.h"
#include "profiler/workload.h"
#include "supernet/arch_spec.h"

namespace flashnas {

struct ModelRunSpec {
  std::string role;  // "fit" | "validate" | "extrapolate"
  ArchSpec arch;
  Workload workload;
  std::string label;  // how the architecture was made (reports)
};

struct SessionOptions {
  int rounds = 3;           // entries
  int run_rounds = 4;       // whole-model runs, all roles alike; rounds past `rounds` hold only runs
  double max_minutes = 0;   // 0: no limit
  uint64_t seed = 1;        // the order of items within a round
  // Whole-model runs, every role measured alike: the latency model is fitted
  // on fit runs and judged on held-out ones, so the two must come from one
  // protocol (a fit on fewer or shorter rounds is biased slow, and the
  // held-out ones then look over-predicted).
  TimingOptions run_timing;
  // Entries: unset, the MeasureOptions' own timing and attempts. A profile
  // sets them short (run_profile_request): an entry's rounds, spread over the
  // run and normalised by the probe, are what steady it, not a long sample.
  std::optional<TimingOptions> entry_timing;
  int entry_attempts = 1;
  int64_t probe_bytes = 0;  // the probe's memory buffer; 0: from the machine's caches
};

struct SessionProgress {
  int64_t done = 0, todo = 0;
  std::string what;  // the item
  double us = 0;     // its raw median this round
  ProbeReading probe;
  double eta_s = 0;
};

struct SessionReport {
  int64_t entries = 0, runs = 0;       // planned items
  int64_t measured = 0, skipped = 0;   // item-rounds measured now; item-rounds already stored
  int rounds = 1, run_rounds = 1;
  bool time_limited = false;
  bool stopped = false;  // a stop signal arrived (common/stop.h); a rerun resumes
  double seconds = 0;
};

SessionReport run_session(const std::vector<LutKey>& entries, const std::vector<ModelRunSpec>& runs, LutStore& store,
                          int64_t device, const MeasureOptions& opts, const SessionOptions& so,
                          const std::function<void(const SessionProgress&)>& progress);

// How an item's rounds become one value. "norm" divides each round by the
// probe's reading around it, smoothed over +-15 s, relative to the table's
// reference (the median reading); "min" keeps the fastest round,
// "median" the middle one.
inline const std::vector<std::string> kPolicies = {"raw_min", "raw_median", "norm_min", "norm_median"};
// Which one validates best depends on the machine and its state (README,
// "Latency predictions"): on the first development machine the fastest raw
// round did, because its variation was short spells the probe, read
// between items, does not catch; on a noisier one the normalised fastest
// round did. The probe's readings are stored, the drift reported, and the
// comparison of all four is part of every profile report.
// "auto", the default, takes per table the policy whose chosen latency model
// has the lowest cross-validated error on the fit runs (the held-out runs
// are not used); every report records each policy's CV error (policy_cv).
// Over six fresh-clone tables on two machines it validated as well as
// raw_min (five, where it picked it) or better (one) (results/demo-cpu/
// latency-runs-fresh-clones-cv, latency-runs-fresh-clones-xeon).
inline constexpr const char* kDefaultPolicy = "auto";

// Finalises the table of (device, dtype, runtime) from the stored rounds:
// entry values, latency models, validation, spread, drift, verdict; stores
// the report in lut_tables and lut_validations and returns it.
json finalize_table(LutStore& store, int64_t device, const std::string& dtype, const std::string& runtime,
                    const std::vector<Workload>& workloads, const std::string& policy = kDefaultPolicy,
                    const Bar& bar = {});

}  // namespace flashnas
