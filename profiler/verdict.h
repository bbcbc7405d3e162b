// The verdict on a finalised latency table, per workload (profiler/finalize.h):
//   reliable:   the held-out validation meets the bar (share within +-10%
//               and Spearman rho);
//   limited:    below the bar, but the prediction error (median) is no larger
//               than the machine's own measurement spread, which is itself
//               below the bar: as good as this machine can be measured;
//   unreliable: below the bar for another reason, or never validated;
// each with its reasons (validation, spread, drift) and what to do.
#pragma once
#include <string>
#include <vector>

#include "common/json_io.h"
#include "profiler/workload.h"

namespace flashnas {

// The bar a workload's validation must pass to be called reliable.
struct Bar {
  double within10 = 0.90;
  double spearman = 0.95;
};

// `validation` and `spread`: the per-workload arrays of a finalised report;
// `drift`: its drift object. Returns {"status", "workloads": [...]}.
json table_verdict(const json& validation, const json& spread, const json& drift, const std::vector<Workload>& workloads,
                   const Bar& bar);

// Human-readable lines of a finalised report: drift, models, validation per
// workload, spread, the verdict with its reasons and what to do.
std::string report_text(const json& report);

}  // namespace flashnas
