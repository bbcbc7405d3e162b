// `flashnas profile --space`: what to measure for a search space, in one
// interleaved session (profiler/session.h):
//   entries:     every operator the space can emit, at every width, for every
//                budget's workload (the grid, plan_entries);
//   fit:         `fit` architectures drawn from the space (random genomes at
//                random widths), and fit/5 made outside it as below (other
//                draws), measured end to end: the latency model's data;
//   validate:    `validate` more, disjoint from the fit set and the grid:
//                held out, for the validation, the spread and the verdict;
//   extrapolate: `extrapolate` architectures outside the space, in three
//                kinds taken in turn: deep (the layers repeated to twice the
//                space's operator cap), mono (every mixer replaced by one
//                mixer type) and ffn-heavy (every FFN doubled, after the
//                space's largest FFN count): does the table hold beyond the
//                space it was fitted on?
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "profiler/session.h"
#include "search/config.h"

namespace flashnas {

struct SpaceProfileOptions {
  int fit = 40, validate = 20, extrapolate = 9;
  uint64_t seed = 1;
  std::vector<Workload> extra_workloads;  // added to the budgets'
  std::vector<std::string> ops;           // only these operator types (empty: all)
};

struct SpaceProfilePlan {
  std::vector<LutKey> entries;
  std::vector<ModelRunSpec> runs;
  std::vector<Workload> workloads;
};

SpaceProfilePlan plan_space_profile(const SearchConfig& cfg, const SpaceProfileOptions& o, const std::string& dtype,
                                    const std::string& runtime);

// Architectures outside the space (the extrapolate set), `n` of them.
std::vector<std::pair<std::string, ArchSpec>> outside_archs(const SearchSpace& space, int n, uint64_t seed);

}  // namespace flashnas
