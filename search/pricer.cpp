#include "search/pricer.h"

#include <cstdio>

#include "profiler/predict.h"

namespace flashnas {

std::string over_budget(const std::vector<Budget>& budgets, const std::vector<double>& ms) {
  for (size_t i = 0; i < budgets.size(); ++i) {
    if (!budgets[i].met(ms.at(i))) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "over budget %s: %.2f ms predicted, limit %.2f ms", budgets[i].name.c_str(), ms[i],
                    budgets[i].limit_ms());
      return buf;
    }
  }
  return "";
}

std::vector<double> Pricer::latencies(const ArchSpec& a) {
  const std::string h = a.hash();
  auto it = memo_.find(h);
  if (it != memo_.end()) return it->second;
  std::vector<double> ms;
  for (const auto& b : cfg_.budgets) ms.push_back(predict(a, b.workload, lut_).total_ms);
  memo_[h] = ms;
  return ms;
}

Priced Pricer::price(const Genome& g) {
  Priced p;
  p.genome = g;
  std::vector<int64_t> widths;
  if (cfg_.space.width_mode == SearchSpace::Width::Fit) widths.assign(cfg_.space.widths.rbegin(), cfg_.space.widths.rend());
  else widths.push_back(g.d_model);
  for (int64_t w : widths) {
    ArchSpec a = cfg_.space.decode(g, w);
    p.genome.d_model = w;
    p.ms = latencies(a);
    p.priced = a;
    if (auto v = cfg_.space.violation(g, a)) {
      p.reason = *v;
      continue;
    }
    const std::string over = over_budget(cfg_.budgets, p.ms);
    if (over.empty()) {
      p.arch = std::move(a);
      p.reason.clear();
      return p;
    }
    p.reason = over;
  }
  if (widths.size() > 1) p.reason += " at the smallest width " + std::to_string(widths.back());
  return p;
}

}  // namespace flashnas
