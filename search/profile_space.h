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
#include <filesystem>
#include <functional>
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

// A whole `flashnas profile` request: a space (search config) or ArchSpec
// files with workloads, and how to measure.
struct ProfileRequest {
  std::filesystem::path db, space;     // space: a search config; empty with archs
  std::vector<std::string> archs;      // ArchSpec files (instead of space)
  std::vector<std::string> workloads;  // "batch=B,prompt=P,generate=G", with archs or added to the space's
  SpaceProfileOptions sp{40, 0, 9, 1, {}, {}};  // no held-out architectures unless asked
  int rounds = 3, run_rounds = 4;
  double max_minutes = 0;
  std::string policy = kDefaultPolicy;
  // Whether --dtype was given; without it a --space profile uses the
  // config's [latency] dtype (the table its search will look for).
  bool dtype_given = true;
};

// What a profile request did: items planned, measured now and found stored
// before, the rounds, the time (s), the table's size, and its report (the
// validation report stored with the table; null when the time limit stopped
// the run before the table was finalised).
struct ProfileSummary {
  std::filesystem::path db;
  std::string device;  // the device's fingerprint
  int64_t entries_planned = 0, runs_planned = 0, measured = 0, skipped = 0, entries = 0;
  int rounds = 0, run_rounds = 0;
  bool time_limited = false;
  double seconds = 0;
  json report;
  json to_json() const;
  // One line of counts and time, then the report's text.
  std::string text() const;
};

// Checks the request (InputError naming the flag, before anything is
// measured or written), measures what the database lacks, finalises the
// table and returns what it did.
ProfileSummary run_profile_request(ProfileRequest r, const DeviceInfo& info, const MeasureOptions& m, const std::string& runtime,
                         const std::function<void(const std::string&)>& log,
                         const std::function<void(const SessionProgress&)>& progress);

// Architectures outside the space (the extrapolate set), `n` of them.
std::vector<std::pair<std::string, ArchSpec>> outside_archs(const SearchSpace& space, int n, uint64_t seed);

}  // namespace flashnas
