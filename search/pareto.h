// Two-objective Pareto tools for studies: both objectives are minimised
// (predicted latency in ms, validation loss in nats/token or bits/byte).
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

namespace flashnas {

struct ParetoPoint {
  double latency = 0;  // x, minimised
  double loss = 0;     // y, minimised
  int64_t id = 0;      // trial id (carried through)
};

// True when a is at least as good as b in both objectives and better in one.
bool dominates(const ParetoPoint& a, const ParetoPoint& b);

// The non-dominated points, sorted by latency ascending (loss then strictly
// descending). Exact duplicates keep the one with the smallest id.
std::vector<ParetoPoint> pareto_front(std::vector<ParetoPoint> points);

// Non-dominated rank of each (latency, loss) point (0 = on the front).
std::vector<int> pareto_ranks(const std::vector<std::pair<double, double>>& pts);

// Area dominated by `points` inside the box bounded by the reference point
// (ref_latency, ref_loss); points outside the box contribute nothing. Larger
// is better; used to compare searches at equal trial counts.
double hypervolume(const std::vector<ParetoPoint>& points, double ref_latency, double ref_loss);

}  // namespace flashnas
