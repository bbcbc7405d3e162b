#include "search/budget.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <set>

#include "common/error.h"

namespace flashnas {

double Budget::tokens_per_s(double latency_ms) const {
  return static_cast<double>(workload.batch * workload.generate) / (latency_ms / 1e3);
}

double Budget::limit_ms() const {
  double l = std::numeric_limits<double>::infinity();
  if (max_ms) l = std::min(l, *max_ms);
  if (min_tokens_per_s) l = std::min(l, 1e3 * static_cast<double>(workload.batch * workload.generate) / *min_tokens_per_s);
  return l;
}

bool Budget::met(double latency_ms) const { return latency_ms <= limit_ms(); }

std::string Budget::describe() const {
  std::string s = name + " (" + workload.str() + "):";
  char buf[64];
  if (max_ms) {
    std::snprintf(buf, sizeof buf, " <= %.4g ms", *max_ms);
    s += buf;
  }
  if (min_tokens_per_s) {
    std::snprintf(buf, sizeof buf, "%s >= %.4g tok/s", max_ms ? "," : "", *min_tokens_per_s);
    s += buf;
  }
  return s;
}

json Budget::to_json() const {
  json j = {{"name", name}, {"workload", workload.str()}};
  if (max_ms) j["max_ms"] = *max_ms;
  if (min_tokens_per_s) j["min_tokens_per_s"] = *min_tokens_per_s;
  return j;
}

std::vector<Budget> parse_budgets(const json& arr, const std::string& source) {
  if (!arr.is_array() || arr.empty()) {
    throw InputError(source + ": field \"budgets\": needs at least one [[budgets]] table (name, workload, max_ms or "
                              "min_tokens_per_s)");
  }
  std::vector<Budget> out;
  std::set<std::string> names;
  for (size_t i = 0; i < arr.size(); ++i) {
    const std::string where = "budgets[" + std::to_string(i) + "]";
    FieldReader f(arr[i], source, where);
    Budget b;
    b.name = f.string("name", "budget" + std::to_string(i));
    if (!names.insert(b.name).second) f.fail("name", "\"" + b.name + "\" is used by another budget");
    b.workload = Workload::parse(f.string("workload"), source + ": field \"" + where + ".workload\"");
    if (b.workload.generate <= 0) f.fail("workload", "must generate at least one token");
    if (f.has("max_ms")) b.max_ms = f.positive_number("max_ms");
    if (f.has("min_tokens_per_s")) b.min_tokens_per_s = f.positive_number("min_tokens_per_s");
    if (!b.max_ms && !b.min_tokens_per_s) f.fail("max_ms", "a budget needs max_ms or min_tokens_per_s");
    f.finish();
    out.push_back(b);
  }
  return out;
}

}  // namespace flashnas
