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
// finalize_table (profiler/finalize.h) turns the stored rounds into the table.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "profiler/finalize.h"
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

}  // namespace flashnas
