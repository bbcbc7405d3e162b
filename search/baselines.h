// The contenders of a comparison (flashnas compare, compare/compare.h): for
// one budget, the designs an engineer would build by hand, sized to that
// budget on the study's own latency table, so that they meet it as closely
// as the study's picks do.
//
// Families (each built with the space's operator templates, vocabulary and
// tying, at the space's widths only: the table has entries for no others):
//   llama               n x [attn, ffn]: a Llama-style transformer at the
//                       standard depth-to-width ratio (below)
//   llama-deep-thin     the same blocks at the smallest aspect (narrow and deep) that uses the budget
//   llama-wide-shallow  the same blocks at the largest aspect (wide and shallow) that uses the budget
//   <mixer>-only        n x [<mixer>, ffn] for every other mixer of the space
//                       (n x [<mixer>] when the space has no FFNs)
//   nemotron-flash      the paper's layer pattern: blocks B1 = [deltanet, ffn,
//                       mamba2, ffn] and B2 = [attn, ffn, mamba2, ffn] in the
//                       order of the published models (B1 B2 B1 B2 B1 B1 for six
//                       blocks): floor(n/3) B2 blocks at the odd positions
//                       1, 3, ..., the rest B1; n blocks and the width scaled
//                       to the budget
// A family whose operators the space lacks is left out with the reason.
//
// Sizing: every (width, n) is priced on the table, n = 1, 2, ... until the
// budget is broken. Only sizes that use the budget are kept: those predicted
// at no less than `near_fraction` of the family's slowest size within the
// budget (a baseline far under the budget would be a weak one). The aspect
// ratio is d_model per mixer layer (Llama-3.2-1B: 2048 / 16 = 128; GPT-2
// small and Pythia-160M: 768 / 12 = 64; Qwen2.5-0.5B: 896 / 24 = 37). Among
// the kept sizes, the standard one has the aspect nearest the band
// [aspect_min, aspect_max] (inside it: the slowest; ties: more parameters);
// deep-thin has the smallest aspect, wide-shallow the largest. A space whose
// widths stop short of the band (the demo's stop at 128) gets its standard
// Llama deeper than the band: the report names each size's aspect.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "search/budget.h"
#include "search/space.h"

namespace flashnas {

struct Contender {
  std::string label;    // "pick-best", "llama", "mamba2-only", "user-<file stem>", ...
  std::string kind;     // "pick" | "baseline" | "user"
  std::string description;  // genome text, or "d=128 4x[attn ffn]"
  ArchSpec arch;
  std::optional<double> predicted_ms;  // for the budget's workload (nullopt: the table cannot price it)
  std::string note;     // where it came from, or why it is not priced
  int64_t params = 0;
  // A baseline's blocks in the space's terms (one StageGene with blocks = 1
  // per block, in order; ratio indexes space.ratios); empty when the space
  // has no ratio for them. genome_of turns them into a genome.
  std::vector<StageGene> units;
};

struct SizingOptions {
  double aspect_min = 32, aspect_max = 128;  // d_model per mixer layer, the standard band
  double near_fraction = 0.85;               // kept sizes: predicted >= this x the family's slowest within the budget
  int max_units = 64;                        // most blocks tried per width
};

// Predicted latency (ms) of an architecture for the budget's workload. It
// throws flashnas::Error when the table lacks an entry the architecture needs.
using PriceFn = std::function<double(const ArchSpec&)>;

// Whether an architecture also meets the study's other budgets: a study's
// trials meet every one of its budgets (the search prunes any that breaks
// one: search/pricer.h), so a baseline must too, or it is a design the
// search was not allowed to return.
using MeetsOthersFn = std::function<bool(const ArchSpec&)>;

// The baselines of the families above for `budget`, deduplicated by
// architecture (a variant equal to an earlier one is left out and named in
// `skipped`). `skipped` receives one line per family left out and why. With
// `meets_others`, only sizes that also meet the study's other budgets count
// (a family's sizes stop where one breaks them).
// InputError naming the budget when no family has any size that meets it.
std::vector<Contender> size_baselines(const SearchSpace& space, const Budget& budget, const PriceFn& price,
                                      const SizingOptions& opts, std::vector<std::string>* skipped,
                                      const MeetsOthersFn& meets_others = nullptr);

// The families' sublayer types for `n` blocks (n >= 1); the nemotron-flash
// pattern as described above. For tests and docs.
std::vector<std::string> family_layers(const std::string& family, int n, bool ffn);

// The genome of the space that decodes to `units` (a baseline's blocks) at
// width `d_model`: staged spaces split the runs of equal blocks into exactly
// `stages` stages of min..max blocks; layerwise spaces take each mixer with
// its FFNs. nullopt when the space cannot hold it (too many blocks or
// operators, a ratio or FFN count it lacks). The search seeds itself with
// these (search.seed_baselines).
std::optional<Genome> genome_of(const SearchSpace& space, const std::vector<StageGene>& units, int64_t d_model);

// The genome texts of every budget's baselines that the space can hold, in
// budget order, without repeats: the designs an engineer would try first.
// `price(a, b)` is the predicted latency of `a` for budget index b; each
// budget's baselines are sized to meet every other budget too. When
// `outside` is given it receives one line per baseline the space cannot hold
// ("<budget>: <label> <description> (<why>)"): a comparison judges the pick
// against these too, and the search can never propose them.
std::vector<std::string> baseline_seeds(const SearchSpace& space, const std::vector<Budget>& budgets,
                                        const std::function<double(const ArchSpec&, size_t)>& price,
                                        std::vector<std::string>* outside = nullptr);

// Mixer layers (every sublayer but ffn).
int mixer_layers(const ArchSpec& a);

// Why the search could never have proposed `a` (more operators than
// max_operators, more mixer layers than its stages and blocks hold, a
// width or mixer it lacks), as a phrase; "" when none of these holds. A
// baseline outside the space that beats the pick points at the space, not
// at the search.
std::string outside_space(const SearchSpace& space, const ArchSpec& a);

}  // namespace flashnas
