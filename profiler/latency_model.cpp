#include "profiler/latency_model.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>

#include "common/error.h"
#include "common/stats.h"

namespace flashnas {
namespace {

bool is_prefill_group(const std::string& g) { return g.size() > 8 && g.compare(g.size() - 8, 8, "|prefill") == 0; }

const std::vector<double> kLambdas = {0.003, 0.03, 0.3, 3.0, 30.0};
// The richer model is kept unless a simpler one cross-validates better by
// more than this (absolute median relative error): with a few dozen noisy
// fit runs, smaller differences are noise.
constexpr double kPreferRicher = 0.01;

}  // namespace

std::string group_key(const std::string& op, int64_t d_model, const std::string& phase) {
  return op + "|" + std::to_string(d_model) + "|" + phase;
}

double LatencyModel::apply(const FitRow& r) const {
  if (kind == "sum") return r.prefill_raw_ms + r.decode_raw_ms;
  if (kind == "scale") return prefill_scale * r.prefill_raw_ms + decode_scale * r.decode_raw_ms;
  double ms = 0;
  for (const auto& [g, v] : r.groups) {
    auto it = coef.find(g);
    ms += v * (it != coef.end() ? it->second : (is_prefill_group(g) ? prefill_scale : decode_scale));
  }
  ms += prefill_layer_ms * double(r.prefill ? r.layers : 0) + decode_layer_step_ms * double(r.layers * r.steps);
  ms += excess_ms_per_mb_step * double(r.steps) * std::max(0.0, r.weight_mb - knee_mb);
  return ms;
}

json LatencyModel::to_json() const {
  json j = {{"kind", kind}, {"rows", rows}, {"cv_mean_abs_error", cv_error}, {"cv_median_abs_error", cv_median_error}};
  if (kind != "sum") {
    j["prefill_scale"] = prefill_scale;
    j["decode_scale"] = decode_scale;
  }
  if (kind == "nnls") {
    j["coefficients"] = coef;
    j["prefill_layer_ms"] = prefill_layer_ms;
    j["decode_layer_step_ms"] = decode_layer_step_ms;
    j["cache_mb"] = cache_mb;
    j["knee_mb"] = knee_mb;
    j["excess_ms_per_mb_step"] = excess_ms_per_mb_step;
    j["lambda"] = lambda;
  }
  return j;
}

LatencyModel LatencyModel::from_json(const json& j, const std::string& where) {
  LatencyModel m;
  try {
    m.kind = j.at("kind").get<std::string>();
    if (m.kind != "sum" && m.kind != "scale" && m.kind != "nnls") {
      throw InputError(where + ": unknown latency model kind \"" + m.kind + "\" (sum, scale, nnls)");
    }
    m.rows = j.value("rows", int64_t(0));
    m.cv_median_error = j.value("cv_median_abs_error", 0.0);
    m.cv_error = j.value("cv_mean_abs_error", m.cv_median_error);  // tables finalised before the mean was kept
    m.prefill_scale = j.value("prefill_scale", 1.0);
    m.decode_scale = j.value("decode_scale", 1.0);
    if (m.kind == "nnls") {
      m.coef = j.at("coefficients").get<std::map<std::string, double>>();
      m.prefill_layer_ms = j.at("prefill_layer_ms").get<double>();
      m.decode_layer_step_ms = j.at("decode_layer_step_ms").get<double>();
      m.cache_mb = j.at("cache_mb").get<double>();
      m.knee_mb = j.value("knee_mb", m.cache_mb);  // tables finalised before the knee was fitted
      m.excess_ms_per_mb_step = j.at("excess_ms_per_mb_step").get<double>();
      m.lambda = j.value("lambda", 0.0);
    }
  } catch (const json::exception& e) {
    throw InputError(where + ": damaged latency model: " + e.what());
  }
  return m;
}

LatencyModel fit_scale(const std::vector<FitRow>& rows) {
  // Relative least squares: minimise sum ((a*P + b*D - y) / y)^2 over a, b >= 0.
  double pp = 0, pd = 0, dd = 0, py = 0, dy = 0;
  for (const auto& r : rows) {
    const double w = 1.0 / (r.measured_ms * r.measured_ms);
    pp += w * r.prefill_raw_ms * r.prefill_raw_ms;
    pd += w * r.prefill_raw_ms * r.decode_raw_ms;
    dd += w * r.decode_raw_ms * r.decode_raw_ms;
    py += w * r.prefill_raw_ms * r.measured_ms;
    dy += w * r.decode_raw_ms * r.measured_ms;
  }
  LatencyModel m;
  m.kind = "scale";
  m.rows = int64_t(rows.size());
  const double det = pp * dd - pd * pd;
  if (pp > 0 && dd > 0 && det > 1e-12 * pp * dd) {
    m.prefill_scale = (py * dd - dy * pd) / det;
    m.decode_scale = (dy * pp - py * pd) / det;
  }
  // A negative or degenerate solution (one phase only, or collinear sums):
  // fall back to one common scale for both phases, and say so in the kind's numbers.
  if (!(m.prefill_scale > 0 && m.decode_scale > 0) || !(det > 1e-12 * pp * dd)) {
    const double tt = pp + 2 * pd + dd, ty = py + dy;
    const double s = tt > 0 ? ty / tt : 1.0;
    m.prefill_scale = m.decode_scale = s;
  }
  return m;
}

LatencyModel fit_nnls(const std::vector<FitRow>& rows, double lambda, double cache_mb, double knee_mb) {
  const LatencyModel prior = fit_scale(rows);
  std::set<std::string> names;
  for (const auto& r : rows) {
    for (const auto& [g, v] : r.groups) names.insert(g);
  }
  const std::vector<std::string> groups(names.begin(), names.end());
  const size_t G = groups.size(), J = G + 3, n = rows.size();
  // Design matrix with rows scaled by 1/y (relative errors); target all ones.
  std::vector<std::vector<double>> X(n, std::vector<double>(J, 0.0));
  for (size_t i = 0; i < n; ++i) {
    const FitRow& r = rows[i];
    const double w = 1.0 / r.measured_ms;
    for (size_t g = 0; g < G; ++g) {
      auto it = r.groups.find(groups[g]);
      if (it != r.groups.end()) X[i][g] = w * it->second;
    }
    X[i][G] = w * double(r.prefill ? r.layers : 0);
    X[i][G + 1] = w * double(r.layers * r.steps);
    X[i][G + 2] = w * double(r.steps) * std::max(0.0, r.weight_mb - knee_mb);
  }
  std::vector<double> c0(J, 0.0), c(J, 0.0), s(J, 0.0);
  for (size_t g = 0; g < G; ++g) c0[g] = is_prefill_group(groups[g]) ? prior.prefill_scale : prior.decode_scale;
  for (size_t j = 0; j < J; ++j) {
    for (size_t i = 0; i < n; ++i) s[j] += X[i][j] * X[i][j];
    s[j] = n ? s[j] / double(n) : 0;
    c[j] = c0[j];
  }
  // The ridge holds the group coefficients near the phase scales; the
  // overheads and the excess-weight cost have no such prior (0 is not a
  // belief about them), so they are constrained to be >= 0 only.
  for (size_t j = G; j < J; ++j) s[j] = 0;
  std::vector<double> pred(n, 0.0);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < J; ++j) pred[i] += X[i][j] * c[j];
  }
  // Cyclic coordinate descent with projection onto c >= 0: each update is
  // the exact minimiser of the convex objective along one coordinate.
  for (int sweep = 0; sweep < 500; ++sweep) {
    double moved = 0;
    for (size_t j = 0; j < J; ++j) {
      double num = lambda * s[j] * c0[j] * double(n), den = lambda * s[j] * double(n);
      for (size_t i = 0; i < n; ++i) {
        if (X[i][j] == 0) continue;
        const double rest = pred[i] - X[i][j] * c[j];
        num += X[i][j] * (1.0 - rest);
        den += X[i][j] * X[i][j];
      }
      if (den <= 0) continue;
      const double next = std::max(0.0, num / den);
      if (next != c[j]) {
        for (size_t i = 0; i < n; ++i) pred[i] += X[i][j] * (next - c[j]);
        moved = std::max(moved, std::abs(next - c[j]) / std::max(1e-9, std::abs(c[j]) + std::abs(c0[j])));
        c[j] = next;
      }
    }
    if (moved < 1e-7) break;
  }
  LatencyModel m;
  m.kind = "nnls";
  m.rows = int64_t(n);
  m.lambda = lambda;
  m.prefill_scale = prior.prefill_scale;
  m.decode_scale = prior.decode_scale;
  for (size_t g = 0; g < G; ++g) m.coef[groups[g]] = c[g];
  m.prefill_layer_ms = c[G];
  m.decode_layer_step_ms = c[G + 1];
  m.cache_mb = cache_mb;
  m.knee_mb = knee_mb;
  m.excess_ms_per_mb_step = c[G + 2];
  return m;
}

ModelChoice choose_model(const std::vector<FitRow>& rows, double cache_mb, int folds) {
  ModelChoice out;
  if (rows.empty()) {
    out.models["sum"] = LatencyModel{};
    out.best = "sum";
    return out;
  }
  // Folds over architectures: an architecture's rows (all its workloads) stay together.
  std::vector<std::string> archs;
  for (const auto& r : rows) archs.push_back(r.arch);
  std::sort(archs.begin(), archs.end());
  archs.erase(std::unique(archs.begin(), archs.end()), archs.end());
  const int k = std::max(2, std::min<int>(folds, int(archs.size())));
  auto fold_of = [&](const FitRow& r) {
    return int(std::lower_bound(archs.begin(), archs.end(), r.arch) - archs.begin()) % k;
  };
  // Cross-validated |relative error|s: {mean, median}.
  auto cv = [&](const std::function<LatencyModel(const std::vector<FitRow>&)>& fit) -> std::pair<double, double> {
    std::vector<double> err;
    for (int f = 0; f < k; ++f) {
      std::vector<FitRow> train, test;
      for (const auto& r : rows) (fold_of(r) == f ? test : train).push_back(r);
      if (train.empty() || test.empty()) continue;
      const LatencyModel m = fit(train);
      for (const auto& r : test) err.push_back(std::abs(m.apply(r) - r.measured_ms) / r.measured_ms);
    }
    if (err.empty()) return {NAN, NAN};
    return {mean(err), median(err)};
  };
  LatencyModel sum;
  sum.rows = int64_t(rows.size());
  {
    std::vector<double> err;
    for (const auto& r : rows) err.push_back(std::abs(sum.apply(r) - r.measured_ms) / r.measured_ms);
    sum.cv_error = mean(err);
    sum.cv_median_error = median(err);
  }
  out.models["sum"] = sum;
  LatencyModel scale = fit_scale(rows);
  std::tie(scale.cv_error, scale.cv_median_error) =
      archs.size() >= 2 ? cv(fit_scale) : std::pair<double, double>{NAN, NAN};
  out.models["scale"] = scale;
  if (archs.size() >= 4) {
    std::pair<double, double> best = {INFINITY, INFINITY};
    double best_lambda = kLambdas.back(), best_knee = cache_mb;
    std::set<double> knees;
    for (double k : kKneeMultiples) knees.insert(k * cache_mb);
    for (double knee : knees) {
      for (double lam : kLambdas) {
        const auto e = cv([&](const std::vector<FitRow>& t) { return fit_nnls(t, lam, cache_mb, knee); });
        if (e.first < best.first) best = e, best_lambda = lam, best_knee = knee;
      }
    }
    LatencyModel nn = fit_nnls(rows, best_lambda, cache_mb, best_knee);
    std::tie(nn.cv_error, nn.cv_median_error) = best;
    out.models["nnls"] = nn;
  }
  // From the richest down: a simpler kind replaces the current choice only
  // when it is better by more than kPreferRicher.
  out.best = "";
  for (const std::string kind : {"nnls", "scale", "sum"}) {
    auto it = out.models.find(kind);
    if (it == out.models.end() || !std::isfinite(it->second.cv_error)) continue;
    if (out.best.empty() || it->second.cv_error < out.models[out.best].cv_error - kPreferRicher) out.best = kind;
  }
  return out;
}

}  // namespace flashnas
