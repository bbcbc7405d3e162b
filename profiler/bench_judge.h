// `flashnas bench --db`: one architecture measured end to end (the probe read
// around it) and predicted from this device's table, the difference judged
// (judge.h).
#pragma once
#include <string>

#include "common/device.h"
#include "profiler/judge.h"
#include "profiler/measure.h"

namespace flashnas {

struct BenchJudgement {
  BenchResult result;
  double predicted_ms = 0;
  Judgement judgement;
  json to_json() const;
};

BenchJudgement bench_against_table(const ArchSpec& spec, const Workload& w, const MeasureOptions& m, int rounds,
                                   const std::string& db, const DeviceInfo& info);

}  // namespace flashnas
