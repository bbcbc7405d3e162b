#include "report/replay_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "common/error.h"
#include "common/format.h"
#include "common/stats.h"

namespace flashnas {
namespace {

// Quantiles of the finite values when at least half of them are finite; NaN
// otherwise (a search without a result counts as worse than any).
void quartiles(std::vector<double> v, double& q25, double& med, double& q75) {
  const size_t n = v.size();
  for (auto& x : v) {
    if (!std::isfinite(x)) x = INFINITY;
  }
  std::sort(v.begin(), v.end());
  auto q = [&](double p) {
    const double x = quantile_sorted(v, p);
    return std::isfinite(x) ? x : NAN;
  };
  q25 = n ? q(0.25) : NAN;
  med = n ? q(0.5) : NAN;
  q75 = n ? q(0.75) : NAN;
}

}  // namespace

void check_replay_algorithms(const std::vector<std::string>& algorithms) {
  for (const auto& a : algorithms) check_replay_algorithm(a);
  if (std::find(algorithms.begin(), algorithms.end(), "random") == algorithms.end()) {
    throw InputError("--algorithms: must include \"random\", the baseline every other is compared to");
  }
}

ReplaySummary summarize_replays(const std::vector<std::vector<ReplayRun>>& runs, const std::vector<std::string>& budgets,
                                int grid) {
  ReplaySummary s;
  s.budgets = budgets;
  if (runs.empty() || runs.front().empty()) throw InputError("--seeds: nothing to summarise");
  s.budget_tokens = runs.front().front().budget_tokens;
  s.seeds = int(runs.front().size());
  for (const auto& algo : runs) {
    ReplayCurve c;
    c.algorithm = algo.front().algorithm;
    for (int g = 1; g <= grid; ++g) {
      const int64_t tok = s.budget_tokens * g / grid;
      std::vector<double> v;
      for (const auto& r : algo) v.push_back(r.best_at(tok));
      double a, b, d;
      quartiles(v, a, b, d);
      c.tokens.push_back(tok);
      c.q25.push_back(a);
      c.median.push_back(b);
      c.q75.push_back(d);
    }
    std::vector<double> fin, ev;
    for (const auto& r : algo) {
      fin.push_back(r.final_best);
      ev.push_back(double(r.evaluated));
    }
    quartiles(fin, c.final_q25, c.final_median, c.final_q75);
    c.evaluated_median = median(ev);
    for (size_t b = 0; b < budgets.size(); ++b) {
      std::vector<double> hv;
      for (const auto& r : algo) hv.push_back(r.hypervolume.at(b));
      c.hypervolume_median.push_back(median(hv));
    }
    s.curves.push_back(c);
  }
  const auto base = std::find_if(s.curves.begin(), s.curves.end(), [&](const ReplayCurve& c) { return c.algorithm == s.baseline; });
  if (base == s.curves.end()) throw InputError("--algorithms: must include \"random\", the baseline every other is compared to");
  s.target = base->final_median;
  for (auto& c : s.curves) {
    for (size_t i = 0; i < c.tokens.size(); ++i) {
      if (std::isfinite(c.median[i]) && c.median[i] <= s.target) {
        c.tokens_to_target = c.tokens[i];
        break;
      }
    }
  }
  return s;
}

json ReplaySummary::to_json() const {
  auto num = [](double x) { return std::isfinite(x) ? json(x) : json(); };
  json cs = json::array();
  for (const auto& c : curves) {
    json curve = json::array();
    for (size_t i = 0; i < c.tokens.size(); ++i) {
      curve.push_back({{"tokens", c.tokens[i]}, {"q25", num(c.q25[i])}, {"median", num(c.median[i])}, {"q75", num(c.q75[i])}});
    }
    cs.push_back({{"algorithm", c.algorithm},
                  {"final_best", {{"q25", num(c.final_q25)}, {"median", num(c.final_median)}, {"q75", num(c.final_q75)}}},
                  {"evaluated_median", c.evaluated_median},
                  {"hypervolume_median", c.hypervolume_median},
                  {"tokens_to_target", c.tokens_to_target >= 0 ? json(c.tokens_to_target) : json()},
                  {"curve", curve}});
  }
  return json{{"budget_tokens", budget_tokens}, {"seeds", seeds},   {"baseline", baseline},
              {"target", num(target)},          {"budgets", budgets}, {"algorithms", cs}};
}

std::string ReplaySummary::text() const {
  std::string s;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "%d seeds per algorithm, budget %s training tokens; target: random search's final median best %.4f\n",
                seeds, format_count(double(budget_tokens)).c_str(), target);
  s += buf;
  std::snprintf(buf, sizeof buf, "%-16s %10s %20s %10s %16s %14s\n", "algorithm", "evaluated", "final best (q25-q75)",
                "median", "to reach target", "hypervolume");
  s += buf;
  for (const auto& c : curves) {
    char range[64], reach[48];
    std::snprintf(range, sizeof range, "%.4f-%.4f", c.final_q25, c.final_q75);
    if (c.tokens_to_target >= 0) {
      std::snprintf(reach, sizeof reach, "%s (%.0f%%)", format_count(double(c.tokens_to_target)).c_str(),
                    100.0 * double(c.tokens_to_target) / double(budget_tokens));
    } else {
      std::snprintf(reach, sizeof reach, "not reached");
    }
    std::snprintf(buf, sizeof buf, "%-16s %10.0f %20s %10.4f %16s %14.4g\n", c.algorithm.c_str(), c.evaluated_median, range,
                  c.final_median, reach, c.hypervolume_median.empty() ? NAN : c.hypervolume_median[0]);
    s += buf;
  }
  return s;
}

std::string ReplaySummary::csv() const {
  std::ostringstream o;
  o.precision(8);
  o << "algorithm,tokens,q25,median,q75\n";
  auto cell = [](double x) { return std::isfinite(x) ? std::to_string(x) : std::string(); };
  for (const auto& c : curves) {
    for (size_t i = 0; i < c.tokens.size(); ++i) {
      o << c.algorithm << ',' << c.tokens[i] << ',' << cell(c.q25[i]) << ',' << cell(c.median[i]) << ',' << cell(c.q75[i])
        << '\n';
    }
  }
  return o.str();
}

std::string ReplaySummary::svg() const {
  const double W = 640, H = 400, ml = 70, mr = 150, mt = 30, mb = 50, pw = W - ml - mr, ph = H - mt - mb;
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& c : curves) {
    for (size_t i = 0; i < c.tokens.size(); ++i) {
      for (double v : {c.q25[i], c.q75[i], c.median[i]}) {
        if (std::isfinite(v)) {
          lo = std::min(lo, v);
          hi = std::max(hi, v);
        }
      }
    }
  }
  if (!std::isfinite(lo)) {
    lo = 0;
    hi = 1;
  }
  const double pad = 0.05 * std::max(hi - lo, 1e-3);
  lo -= pad;
  hi += pad;
  auto X = [&](double tok) { return ml + pw * tok / double(budget_tokens); };
  auto Y = [&](double v) { return mt + ph * (hi - v) / (hi - lo); };
  static const char* colors[] = {"#444444", "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};
  std::string s;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" "
                "font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
                "<text x=\"%.0f\" y=\"18\">best loss at the top rung against training tokens (median, quartiles; %d seeds)</text>\n"
                "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#999\"/>\n",
                W, H, ml, seeds, ml, mt, pw, ph);
  s += buf;
  for (int i = 0; i <= 4; ++i) {
    const double v = lo + (hi - lo) * i / 4, tok = double(budget_tokens) * i / 4;
    std::snprintf(buf, sizeof buf,
                  "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.3f</text>\n<text x=\"%.1f\" y=\"%.0f\" "
                  "text-anchor=\"middle\">%s</text>\n",
                  ml - 4, Y(v) + 4, v, X(tok), mt + ph + 16, format_count(tok).c_str());
    s += buf;
  }
  std::snprintf(buf, sizeof buf, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">training tokens</text>\n", ml + pw / 2,
                H - 12);
  s += buf;
  if (std::isfinite(target)) {
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>\n", ml,
                  ml + pw, Y(target), Y(target));
    s += buf;
  }
  for (size_t a = 0; a < curves.size(); ++a) {
    const auto& c = curves[a];
    const char* col = colors[a % 7];
    std::string band_top, band_bottom, line;
    for (size_t i = 0; i < c.tokens.size(); ++i) {
      if (!std::isfinite(c.median[i])) continue;
      std::snprintf(buf, sizeof buf, "%.1f,%.1f ", X(double(c.tokens[i])), Y(c.median[i]));
      line += buf;
      if (std::isfinite(c.q25[i]) && std::isfinite(c.q75[i])) {
        std::snprintf(buf, sizeof buf, "%.1f,%.1f ", X(double(c.tokens[i])), Y(c.q25[i]));
        band_top += buf;
        std::snprintf(buf, sizeof buf, "%.1f,%.1f ", X(double(c.tokens[i])), Y(c.q75[i]));
        band_bottom = buf + band_bottom;
      }
    }
    if (!band_top.empty()) {
      s += "<polygon points=\"" + band_top + band_bottom + "\" fill=\"" + col + "\" fill-opacity=\"0.12\" stroke=\"none\"/>\n";
    }
    if (!line.empty()) s += "<polyline points=\"" + line + "\" fill=\"none\" stroke=\"" + col + "\" stroke-width=\"2\"/>\n";
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"%s\" stroke-width=\"2\"/>"
                  "<text x=\"%.0f\" y=\"%.0f\">%s</text>\n",
                  ml + pw + 10, ml + pw + 30, mt + 14.0 * double(a) + 10, mt + 14.0 * double(a) + 10, col, ml + pw + 34,
                  mt + 14.0 * double(a) + 14, c.algorithm.c_str());
    s += buf;
  }
  return s + "</svg>\n";
}

}  // namespace flashnas
