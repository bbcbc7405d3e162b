// Judging one end-to-end measurement against the table's prediction (export,
// bench with a table): is the difference within what the table's validation
// showed, and if not, what is the likely cause? The probe read now against the
// table's reference says whether the machine runs slower or faster than when
// it was profiled (other load, another machine size); the load average says
// whether other processes compete for the cores.
#pragma once
#include <string>

#include "common/json_io.h"
#include "profiler/lut_table.h"
#include "profiler/probe.h"
#include "profiler/workload.h"

namespace flashnas {

struct Judgement {
  double error = 0;           // (predicted - measured) / measured
  double validated = 0.10;    // the error the table's validation allows for this workload (its worst, at least 10%)
  bool beyond = false;        // |error| > validated
  double speed_ratio = 1;     // probe now / the table's reference (> 1: slower now)
  double predicted_now_ms = 0;  // the prediction at the machine's speed now
  std::string note;           // empty when within; otherwise what and the likely cause
  json to_json() const;
};

Judgement judge(double predicted_ms, double measured_ms, const LutTable& table, const Workload& w,
                const ProbeReading& now);

// The 1-minute load average and the number of online CPUs (0 when unknown).
double load_average();
int online_cpus();

}  // namespace flashnas
