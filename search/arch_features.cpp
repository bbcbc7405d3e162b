#include "search/arch_features.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace flashnas {

size_t arch_feature_count(const SearchSpace& space, size_t budgets) {
  return 3 + space.mixers.size() * 4 + 1 + budgets;
}

std::vector<double> arch_features(const SearchSpace& space, const Genome& g, int64_t params, const std::vector<double>& ms) {
  const ArchSpec a = space.decode(g);
  std::vector<int> mixer_of;  // index into space.mixers per mixer layer
  int ffn = 0;
  for (const auto& l : a.layers) {
    if (l.type == "ffn") {
      ++ffn;
      continue;
    }
    const auto it = std::find(space.mixers.begin(), space.mixers.end(), l.type);
    if (it == space.mixers.end()) throw Error("arch_features: layer type \"" + l.type + "\" is not a mixer of the space");
    mixer_of.push_back(int(it - space.mixers.begin()));
  }
  const size_t nm = space.mixers.size(), n = mixer_of.size();
  std::vector<double> f;
  f.reserve(arch_feature_count(space, ms.size()));
  f.push_back(std::log2(double(a.d_model)));
  f.push_back(double(n));
  f.push_back(double(ffn));
  std::vector<double> count(nm, 0), third(nm * 3, 0);
  std::vector<double> per_third(3, 0);
  for (size_t i = 0; i < n; ++i) {
    const size_t t = std::min<size_t>(2, i * 3 / std::max<size_t>(n, 1));
    count[size_t(mixer_of[i])] += 1;
    third[size_t(mixer_of[i]) * 3 + t] += 1;
    per_third[t] += 1;
  }
  for (const double c : count) f.push_back(c);
  for (size_t m = 0; m < nm; ++m) {
    for (size_t t = 0; t < 3; ++t) f.push_back(per_third[t] > 0 ? third[m * 3 + t] / per_third[t] : 0.0);
  }
  f.push_back(std::log(double(std::max<int64_t>(params, 1))));
  for (const double v : ms) {
    if (!(v > 0) || !std::isfinite(v)) throw Error("arch_features: a predicted latency is not a positive number");
    f.push_back(std::log(v));
  }
  return f;
}

}  // namespace flashnas
