// Latency budgets: a workload with a limit, from [[budgets]] tables:
//   name = "agent-call", workload = "batch=1,prompt=128,generate=32",
//   max_ms = 60            (the whole workload's latency), or
//   min_tokens_per_s = 400 (batch * generate tokens over the whole latency).
// Both may be given; then both must hold.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "common/json_io.h"
#include "profiler/workload.h"

namespace flashnas {

struct Budget {
  std::string name;
  Workload workload;
  std::optional<double> max_ms;
  std::optional<double> min_tokens_per_s;

  // Tokens per second of this workload at `latency_ms`.
  double tokens_per_s(double latency_ms) const;
  bool met(double latency_ms) const;
  // The tightest latency the limits allow, in ms.
  double limit_ms() const;
  std::string describe() const;  // "agent-call (batch=1,prompt=128,generate=32): <= 60 ms"
  json to_json() const;
};

// Parses the [[budgets]] array; InputError naming "budgets[i].field".
std::vector<Budget> parse_budgets(const json& arr, const std::string& source);

}  // namespace flashnas
