#include "profiler/verdict.h"

#include <cmath>
#include <cstdio>

namespace flashnas {

json table_verdict(const json& validation, const json& spread, const json& drift, const std::vector<Workload>& workloads,
                   const Bar& bar) {
  json verdicts = json::array();
  std::string overall = "reliable";
  auto rank = [](const std::string& s) { return s == "reliable" ? 0 : s == "limited" ? 1 : 2; };
  const double drift_ratio = drift.value("p90_over_p10", 1.0);
  for (const auto& w : workloads) {
    const std::string ws = w.str();
    json v = {{"workload", ws}};
    json reasons = json::array(), advice = json::array();
    const json* val = nullptr;
    for (const auto& x : validation) {
      if (x["workload"] == ws) val = &x;
    }
    const json* sp = nullptr;
    for (const auto& x : spread) {
      if (x["workload"] == ws) sp = &x;
    }
    std::string status;
    if (!val) {
      status = "unreliable";
      reasons.push_back("not validated: no held-out architecture was measured end to end for this workload");
      advice.push_back("run flashnas profile --space CONFIG --validate 20");
    } else {
      const double w10 = (*val)["within_10pct"].get<double>(), med = (*val)["median_abs_error"].get<double>();
      const double rho = (*val)["spearman"].is_number() ? (*val)["spearman"].get<double>() : 0.0;
      v["within_10pct"] = w10;
      v["median_abs_error"] = med;
      v["spearman"] = rho;
      if (w10 >= bar.within10 && rho >= bar.spearman) {
        status = "reliable";
      } else {
        char buf[320];
        std::snprintf(buf, sizeof buf, "validation below the bar: %.0f%% within +-10%% (bar %.0f%%), Spearman rho %.3f (bar %.2f)",
                      100 * w10, 100 * bar.within10, rho, bar.spearman);
        reasons.push_back(buf);
        const double sp_med = sp ? (*sp)["median_abs_diff"].get<double>() : NAN;
        const double sp_w10 = sp ? (*sp)["within_10pct"].get<double>() : NAN;
        if (sp && med <= sp_med && sp_w10 < bar.within10) {
          status = "limited";
          std::snprintf(buf, sizeof buf,
                        "measurement spread: two measurements of the same architectures agree within +-10%% only %.0f%% of "
                        "the time (median difference %.1f%%), and the prediction error (median %.1f%%) is no larger: the "
                        "table is as good as this machine can be measured",
                        100 * sp_w10, 100 * sp_med, 100 * med);
          reasons.push_back(buf);
          advice.push_back("predictions are as accurate as the machine is repeatable; for tighter numbers profile on a "
                           "quieter machine (no other tenants, fixed CPU frequency)");
        } else {
          status = "unreliable";
          if (sp) {
            std::snprintf(buf, sizeof buf, "measurement spread: median %.1f%% between two measurements of one architecture",
                          100 * sp_med);
            reasons.push_back(buf);
          }
          advice.push_back("rerun flashnas profile with a new --db when nothing else runs on this machine, or with more "
                           "--rounds");
        }
      }
    }
    if (drift_ratio > 1.2) {
      char buf[200];
      std::snprintf(buf, sizeof buf,
                    "drift: the machine's speed moved during profiling (smoothed probe p90/p10 = %.2f); measure again "
                    "on a quieter machine if the validation suffers",
                    drift_ratio);
      reasons.push_back(buf);
    }
    v["status"] = status;
    v["reasons"] = reasons;
    v["advice"] = advice;
    if (rank(status) > rank(overall)) overall = status;
    verdicts.push_back(v);
  }
  if (workloads.empty()) overall = "unreliable";

  return json{{"status", overall}, {"workloads", verdicts}};
}

std::string report_text(const json& rep) {
  std::string out;
  char buf[512];
  const json& d = rep["drift"];
  if (!d.empty()) {
    std::snprintf(buf, sizeof buf,
                  "machine speed (probe, %lld readings): p10 %.2fx, p90 %.2fx, range %.2fx..%.2fx of the reference\n",
                  static_cast<long long>(d["readings"].get<int64_t>()), d["p10_ratio"].get<double>(),
                  d["p90_ratio"].get<double>(), d["min_ratio"].get<double>(), d["max_ratio"].get<double>());
    out += buf;
  }
  for (const auto& m : rep["models"]) {
    const json& mm = m["model"];
    const double cv_median = mm.value("cv_median_abs_error", NAN);
    std::snprintf(buf, sizeof buf, "latency model batch=%lld: %s (cross-validated |error| mean %.1f%%, median %.1f%% on %lld fit runs",
                  static_cast<long long>(m["batch"].get<int64_t>()), mm["kind"].get<std::string>().c_str(),
                  100 * mm.value("cv_mean_abs_error", cv_median), 100 * cv_median,
                  static_cast<long long>(mm["rows"].get<int64_t>()));
    out += buf;
    if (mm.contains("excess_ms_per_mb_step")) {
      std::snprintf(buf, sizeof buf, "; weights beyond %.1f MB cost %.3f ms per MB and decode step",
                    mm.value("knee_mb", mm.value("cache_mb", 0.0)), mm["excess_ms_per_mb_step"].get<double>());
      out += buf;
    }
    out += ")\n";
  }
  auto line = [&](const char* what, const json& v) {
    std::snprintf(buf, sizeof buf,
                  "%s %s, %d architectures: %.0f%% within +-5%%, %.0f%% within +-10%%, median |error| %.1f%%, worst %.1f%%, "
                  "mean %+.1f%%, Spearman rho %.3f\n",
                  what, v["workload"].get<std::string>().c_str(), v["n"].get<int>(), 100 * v["within_5pct"].get<double>(),
                  100 * v["within_10pct"].get<double>(), 100 * v["median_abs_error"].get<double>(),
                  100 * v["worst_abs_error"].get<double>(), 100 * v["mean_error"].get<double>(),
                  v["spearman"].is_number() ? v["spearman"].get<double>() : NAN);
    out += buf;
  };
  for (const auto& v : rep["validation"]) line("validation", v);
  for (const auto& v : rep["extrapolation"]) line("outside the space", v);
  auto spread = [&](const char* what, const json& s) {
    std::snprintf(buf, sizeof buf,
                  "%s %s, %d architectures measured twice: %.0f%% within +-10%%, median |difference| "
                  "%.1f%%, worst %.1f%%\n",
                  what, s["workload"].get<std::string>().c_str(), s["n"].get<int>(), 100 * s["within_10pct"].get<double>(),
                  100 * s["median_abs_diff"].get<double>(), 100 * s["worst_abs_diff"].get<double>());
    out += buf;
  };
  for (const auto& s : rep["spread"]) spread("measurement spread", s);
  for (const auto& s : rep.value("extrapolation_spread", json::array())) spread("measurement spread outside the space", s);
  for (const auto& v : rep["verdict"]["workloads"]) {
    out += "verdict " + v["workload"].get<std::string>() + ": " + v["status"].get<std::string>();
    for (const auto& r : v["reasons"]) out += "\n  - " + r.get<std::string>();
    for (const auto& a : v["advice"]) out += "\n  what to do: " + a.get<std::string>();
    out += "\n";
  }
  out += "table verdict: " + rep["verdict"]["status"].get<std::string>() + "\n";
  return out;
}

}  // namespace flashnas
