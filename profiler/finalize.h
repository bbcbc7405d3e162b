// Finalising a latency table from its stored rounds (profiler/session.h
// measures them): per item, its rounds combined by the table's policy (see
// kPolicies); the latency model fitted per batch size on the "fit" runs
// (latency_model.h); the "validate" runs (held out) and the "extrapolate"
// runs (outside the space: deeper, unusual mixes) predicted and compared; the
// measurement spread (each validation architecture's odd rounds against its
// even rounds); the probe's drift; the verdict per workload. All of it is
// stored in lut_tables and lut_validations and returned.
#pragma once
#include <string>
#include <vector>

#include "common/json_io.h"
#include "profiler/lut.h"
#include "profiler/verdict.h"
#include "profiler/workload.h"

namespace flashnas {

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
// the report in lut_tables and lut_validations and returns it. InputError
// for a policy that is neither "auto" nor one of kPolicies.
json finalize_table(LutStore& store, int64_t device, const std::string& dtype, const std::string& runtime,
                    const std::vector<Workload>& workloads, const std::string& policy = kDefaultPolicy,
                    const Bar& bar = {});

}  // namespace flashnas
