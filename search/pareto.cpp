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

}  // namespace flashnas
