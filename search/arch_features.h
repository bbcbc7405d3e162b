// What the guided search's surrogate (search/surrogate.h) sees of a
// candidate: a fixed-length vector that works for staged and layerwise
// spaces alike, built from the decoded architecture.
//
//   log2 d_model, mixer count, FFN count,
//   per mixer type of the space: its layer count,
//   per mixer type and third of the mixer sequence (first, middle, last):
//     the share of that third's mixers of this type (where a type sits),
//   log parameters,
//   per budget: log predicted latency in ms (config order).
#pragma once
#include <cstdint>
#include <vector>

#include "search/space.h"

namespace flashnas {

// `ms`: predicted latency per budget (config order), all > 0.
std::vector<double> arch_features(const SearchSpace& space, const Genome& g, int64_t params, const std::vector<double>& ms);

// The number of features arch_features gives for this space and budget count.
size_t arch_feature_count(const SearchSpace& space, size_t budgets);

}  // namespace flashnas
