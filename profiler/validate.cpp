#include "profiler/validate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>

#include "common/stats.h"

namespace flashnas {
namespace {

std::vector<double> ranks(const std::vector<double>& x) {
  std::vector<size_t> idx(x.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
  std::vector<double> r(x.size());
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j + 1 < idx.size() && x[idx[j + 1]] == x[idx[i]]) ++j;
    const double avg = 0.5 * double(i + j) + 1.0;
    for (size_t k = i; k <= j; ++k) r[idx[k]] = avg;
    i = j + 1;
  }
  return r;
}

}  // namespace

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size() || a.size() < 2) return NAN;
  const auto ra = ranks(a), rb = ranks(b);
  const double n = double(a.size());
  const double ma = std::accumulate(ra.begin(), ra.end(), 0.0) / n, mb = std::accumulate(rb.begin(), rb.end(), 0.0) / n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    sab += (ra[i] - ma) * (rb[i] - mb);
    saa += (ra[i] - ma) * (ra[i] - ma);
    sbb += (rb[i] - mb) * (rb[i] - mb);
  }
  if (saa == 0 || sbb == 0) return NAN;
  return sab / std::sqrt(saa * sbb);
}

void summarize_validation(WorkloadValidation& v) {
  std::vector<double> abs_err, pred, meas;
  double sum = 0;
  for (const auto& r : v.rows) {
    abs_err.push_back(std::abs(r.error()));
    sum += r.error();
    pred.push_back(r.predicted_ms);
    meas.push_back(r.measured_ms);
  }
  if (abs_err.empty()) return;
  const double n = double(abs_err.size());
  v.within5 = double(std::count_if(abs_err.begin(), abs_err.end(), [](double e) { return e <= 0.05; })) / n;
  v.within10 = double(std::count_if(abs_err.begin(), abs_err.end(), [](double e) { return e <= 0.10; })) / n;
  std::vector<double> s = abs_err;
  std::sort(s.begin(), s.end());
  v.median_abs_error = quantile_sorted(s, 0.5);
  v.worst_abs_error = s.back();
  v.mean_error = sum / n;
  v.spearman = spearman(pred, meas);
}

json WorkloadValidation::to_json() const {
  json rs = json::array();
  for (const auto& r : rows) {
    rs.push_back({{"arch", r.arch}, {"hash", r.hash}, {"predicted_ms", r.predicted_ms}, {"measured_ms", r.measured_ms},
                  {"error", r.error()}});
  }
  return {{"workload", workload.str()},
          {"n", rows.size()},
          {"within_5pct", within5},
          {"within_10pct", within10},
          {"median_abs_error", median_abs_error},
          {"worst_abs_error", worst_abs_error},
          {"mean_error", mean_error},
          {"spearman", std::isfinite(spearman) ? json(spearman) : json()},
          {"rows", rs}};
}

json ValidationReport::to_json() const {
  json ws = json::array();
  for (const auto& w : workloads) ws.push_back(w.to_json());
  return {{"workloads", ws}, {"seconds", seconds}, {"rounds", rounds}};
}

std::string ValidationReport::table() const {
  std::string out;
  char buf[256];
  for (const auto& w : workloads) {
    std::snprintf(buf, sizeof buf,
                  "validation %s, %zu architectures: %.0f%% within +-5%%, %.0f%% within +-10%%, median |error| %.1f%%, "
                  "worst %.1f%%, mean error %+.1f%%, Spearman rho %.3f\n",
                  w.workload.str().c_str(), w.rows.size(), 100 * w.within5, 100 * w.within10, 100 * w.median_abs_error,
                  100 * w.worst_abs_error, 100 * w.mean_error, w.spearman);
    out += buf;
  }
  return out;
}

json measurement_spread(const ValidationReport& now, const json& earlier) {
  json out = json::array();
  for (const auto& w : now.workloads) {
    std::map<std::string, double> before;
    for (const auto& ew : earlier.value("workloads", json::array())) {
      if (ew.value("workload", "") != w.workload.str()) continue;
      for (const auto& r : ew["rows"]) before[r["hash"].get<std::string>()] = r["measured_ms"].get<double>();
    }
    std::vector<double> d;
    for (const auto& r : w.rows) {
      auto it = before.find(r.hash);
      if (it != before.end()) d.push_back(std::abs(r.measured_ms - it->second) / it->second);
    }
    if (d.empty()) continue;
    std::sort(d.begin(), d.end());
    const double n = double(d.size());
    out.push_back({{"workload", w.workload.str()},
                   {"n", d.size()},
                   {"within_5pct", double(std::count_if(d.begin(), d.end(), [](double x) { return x <= 0.05; })) / n},
                   {"within_10pct", double(std::count_if(d.begin(), d.end(), [](double x) { return x <= 0.10; })) / n},
                   {"median_abs_diff", quantile_sorted(d, 0.5)},
                   {"worst_abs_diff", d.back()}});
  }
  return out;
}

}  // namespace flashnas
