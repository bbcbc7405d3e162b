#include "search/pareto.h"

#include <algorithm>

namespace flashnas {

bool dominates(const ParetoPoint& a, const ParetoPoint& b) {
  return a.latency <= b.latency && a.loss <= b.loss && (a.latency < b.latency || a.loss < b.loss);
}

std::vector<ParetoPoint> pareto_front(std::vector<ParetoPoint> points) {
  std::sort(points.begin(), points.end(), [](const ParetoPoint& a, const ParetoPoint& b) {
    if (a.latency != b.latency) return a.latency < b.latency;
    if (a.loss != b.loss) return a.loss < b.loss;
    return a.id < b.id;
  });
  // Sweep by latency: a point is on the front iff its loss beats every faster point's.
  std::vector<ParetoPoint> front;
  for (const auto& p : points) {
    if (front.empty() || p.loss < front.back().loss) front.push_back(p);
  }
  return front;
}

double hypervolume(const std::vector<ParetoPoint>& points, double ref_latency, double ref_loss) {
  std::vector<ParetoPoint> inside;
  for (const auto& p : points) {
    if (p.latency < ref_latency && p.loss < ref_loss) inside.push_back(p);
  }
  const auto front = pareto_front(std::move(inside));
  double area = 0;
  for (size_t i = 0; i < front.size(); ++i) {
    const double next_x = i + 1 < front.size() ? front[i + 1].latency : ref_latency;
    area += (next_x - front[i].latency) * (ref_loss - front[i].loss);
  }
  return area;
}

std::vector<int> pareto_ranks(const std::vector<std::pair<double, double>>& pts) {
  const size_t n = pts.size();
  std::vector<int> rank(n, -1);
  auto dom = [&](size_t a, size_t b) {
    return pts[a].first <= pts[b].first && pts[a].second <= pts[b].second &&
           (pts[a].first < pts[b].first || pts[a].second < pts[b].second);
  };
  size_t assigned = 0;
  for (int r = 0; assigned < n; ++r) {
    std::vector<size_t> front;
    for (size_t i = 0; i < n; ++i) {
      if (rank[i] >= 0) continue;
      bool dominated = false;
      for (size_t j = 0; j < n && !dominated; ++j) dominated = j != i && rank[j] < 0 && dom(j, i);
      if (!dominated) front.push_back(i);
    }
    for (size_t i : front) rank[i] = r;
    assigned += front.size();
  }
  return rank;
}

}  // namespace flashnas
