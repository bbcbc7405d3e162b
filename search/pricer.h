// Prices candidates from the LUT: predicted latency per budget, and the
// width rule of the space (width = "fit": the largest width that meets every
// budget; width = "gene": the genome's own width must meet them).
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "profiler/lut_table.h"
#include "search/config.h"

namespace flashnas {

struct Priced {
  Genome genome;               // with its width set
  std::optional<ArchSpec> arch;  // nullopt when no width passes (see reason)
  ArchSpec priced;               // the architecture `ms` belongs to (chosen, or the last width tried)
  std::vector<double> ms;      // predicted latency per budget (config order), at the chosen (or smallest) width
  std::string reason;          // why it was pruned
};

// Why latencies `ms` (one per budget, config order) break the budgets: the
// first one broken, "over budget <name>: <ms> ms predicted, limit <ms> ms";
// "" when every budget is met. A study's trials meet all of its budgets, and
// so must the hand designs it is compared with (search/baselines.h).
std::string over_budget(const std::vector<Budget>& budgets, const std::vector<double>& ms);

class Pricer {
 public:
  Pricer(const SearchConfig& cfg, const LutTable& lut) : cfg_(cfg), lut_(lut) {}
  // Predicted ms per budget; Error naming the entry when the LUT lacks one.
  std::vector<double> latencies(const ArchSpec& a);
  Priced price(const Genome& g);

 private:
  const SearchConfig& cfg_;
  const LutTable& lut_;
  std::map<std::string, std::vector<double>> memo_;  // arch hash -> ms per budget
};

}  // namespace flashnas
