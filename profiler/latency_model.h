// The model that turns a LUT's entry sums into a whole-model latency, one per
// batch size, fitted on whole-model measurements of random architectures
// ("fit" runs) and judged on held-out ones. Three kinds, compared on every
// profile run:
//   sum:   the plain sum of the entries (no fit)
//   scale: one scale for the prefill sum and one for the decode sum
//          (least squares through the origin, relative errors)
//   nnls:  one non-negative coefficient per (operator, d_model, phase) group
//          of entries, plus per-sublayer overheads for a prefill and for a
//          decode step, plus a cost per decode step and megabyte of weights
//          beyond a knee (a model larger than the caches can hold streams
//          its excess from a slower level every step): the kernel-level
//          regression of nn-Meter/LitePred, ridge-regularised towards the
//          `scale` fit so that groups few fit runs contain stay near it.
//          Relative errors are minimised. The knee is at least the
//          footprint the entries were timed with (their rotating copies);
//          where the slowdown really begins depends on the machine's shared
//          cache and its neighbours, so it is chosen with the ridge
//          strength by cross-validation among multiples of that footprint.
// The kind a table uses, and the nnls knee and ridge, are the ones with the
// lowest cross-validated mean |relative error| on the fit runs (k-fold over
// architectures). The mean, not the median: the knee only matters for the
// few largest models, which a median never looks at. Held-out figures are
// reported for all kinds.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/json_io.h"

namespace flashnas {

// One whole-model measurement as the fit sees it: the entry sums per group
// (ms; key "op|d_model|phase") and the measured total (ms).
struct FitRow {
  std::map<std::string, double> groups;  // raw entry sums per group, ms
  double prefill_raw_ms = 0, decode_raw_ms = 0;
  int64_t layers = 0;    // sublayers (without the model's ends)
  int64_t steps = 0;     // decode steps (the workload's generate)
  bool prefill = false;  // the workload has a prefill
  double weight_mb = 0;  // the model's weights, MB (1e6 bytes)
  double measured_ms = 0;
  std::string arch;      // hash, to keep an architecture's rows in one fold
};

struct LatencyModel {
  std::string kind = "sum";  // "sum" | "scale" | "nnls"
  double prefill_scale = 1, decode_scale = 1;
  std::map<std::string, double> coef;  // nnls: group -> coefficient (groups not fitted use the phase scale)
  double prefill_layer_ms = 0, decode_layer_step_ms = 0;  // nnls: overheads per sublayer (per decode step)
  double cache_mb = 0;                  // nnls: the weight footprint the entries were timed with, MB
  double knee_mb = 0;                   // nnls: weights beyond this (MB, >= cache_mb) cost excess_ms_per_mb_step
  double excess_ms_per_mb_step = 0;     // nnls: per decode step and MB of weights beyond knee_mb
  double lambda = 0;                   // nnls: the ridge strength chosen by cross-validation
  int64_t rows = 0;                    // fit runs used
  double cv_error = 0;                 // cross-validated mean |relative error| on the fit runs (the choice's score)
  double cv_median_error = 0;          // cross-validated median |relative error| on the fit runs

  double apply(const FitRow& r) const;  // predicted ms
  json to_json() const;
  static LatencyModel from_json(const json& j, const std::string& where);
};

LatencyModel fit_scale(const std::vector<FitRow>& rows);
LatencyModel fit_nnls(const std::vector<FitRow>& rows, double lambda, double cache_mb, double knee_mb);

// The knees the cross-validation tries: these multiples of the entries' footprint.
inline constexpr double kKneeMultiples[] = {1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0};

// Fits every kind, cross-validates each (k folds over architectures), and
// returns them keyed by kind with cv_error set; "best" names the lowest.
struct ModelChoice {
  std::map<std::string, LatencyModel> models;
  std::string best;
};
ModelChoice choose_model(const std::vector<FitRow>& rows, double cache_mb, int folds = 5);

// Group key of an entry: "op|d_model|phase".
std::string group_key(const std::string& op, int64_t d_model, const std::string& phase);

}  // namespace flashnas
