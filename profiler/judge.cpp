#include "profiler/judge.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>

namespace flashnas {

double load_average() {
  std::ifstream in("/proc/loadavg");
  double v = 0;
  if (!(in >> v)) return 0;
  return v;
}

int online_cpus() {
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? int(n) : 0;
}

json Judgement::to_json() const {
  return json{{"error", error},         {"validated_error", validated}, {"beyond_validated", beyond},
              {"speed_ratio", speed_ratio}, {"predicted_now_ms", predicted_now_ms}, {"note", note}};
}

Judgement judge(double predicted_ms, double measured_ms, const LutTable& table, const Workload& w,
                const ProbeReading& now) {
  Judgement j;
  j.error = (predicted_ms - measured_ms) / measured_ms;
  j.predicted_now_ms = predicted_ms;
  if (!table.report.is_null()) {
    for (const auto& v : table.report.value("validation", json::array())) {
      if (v.value("workload", "") == w.str()) j.validated = std::max(0.10, v.value("worst_abs_error", 0.10));
    }
    const double ref = table.report["probe"].value("reference_index_us", 0.0);
    if (ref > 0 && now.index() > 0) {
      j.speed_ratio = now.index() / ref;
      j.predicted_now_ms = predicted_ms * j.speed_ratio;
    }
  }
  j.beyond = std::abs(j.error) > j.validated;
  if (!j.beyond) return j;
  char buf[640];
  std::snprintf(buf, sizeof buf, "measured %.2f ms, predicted %.2f ms (%+.0f%%), beyond the table's validated error (%.0f%%)",
                measured_ms, predicted_ms, 100 * j.error, 100 * j.validated);
  j.note = buf;
  const double load = load_average();
  const int cpus = online_cpus();
  const double now_err = (j.predicted_now_ms - measured_ms) / measured_ms;
  if (std::abs(j.speed_ratio - 1) > 0.10 && std::abs(now_err) < std::abs(j.error)) {
    std::snprintf(buf, sizeof buf,
                  ". Likely cause: the machine runs %.2fx %s than when the table was profiled (speed probe); at today's "
                  "speed the table predicts %.2f ms (%+.0f%%)%s",
                  j.speed_ratio > 1 ? j.speed_ratio : 1 / j.speed_ratio, j.speed_ratio > 1 ? "slower" : "faster",
                  j.predicted_now_ms, 100 * now_err,
                  load > 0.5 * cpus && cpus > 0 ? "; other processes are running (load average above half the cores)" : "");
    j.note += buf;
  } else if (cpus > 0 && load > 0.5 * cpus) {
    std::snprintf(buf, sizeof buf,
                  ". Likely cause: other processes compete for the cores (load average %.1f on %d CPUs); measure again "
                  "when the machine is idle",
                  load, cpus);
    j.note += buf;
  } else {
    j.note += ". The machine's speed matches the table's: this architecture may lie outside what the table was "
              "validated on (profile with --validate on a space that contains it)";
  }
  return j;
}

}  // namespace flashnas
