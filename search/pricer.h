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
