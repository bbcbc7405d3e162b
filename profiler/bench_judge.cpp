#include "profiler/bench_judge.h"

#include "profiler/lut_table.h"
#include "profiler/predict.h"
#include "profiler/probe.h"

namespace flashnas {

json BenchJudgement::to_json() const {
  json j = judgement.to_json();
  j["predicted_ms"] = predicted_ms;
  return j;
}

BenchJudgement bench_against_table(const ArchSpec& spec, const Workload& w, const MeasureOptions& m, int rounds,
                                   const std::string& db, const DeviceInfo& info) {
  LutStore store(db, Access::read_only);
  const int64_t device = store.require_device(info);
  const LutTable table = LutTable::load(store, device, dtype_name(m.dtype), m.runtime);
  BenchJudgement out;
  out.predicted_ms = predict(spec, w, table).total_ms;
  MachineProbe probe(m.device, probe_memory_bytes(read_cpu_caches()));
  const ProbeReading before = probe.read();
  out.result = bench_rounds(spec, w, m, rounds);
  const ProbeReading now = mean_reading(before, probe.read());
  out.judgement = judge(out.predicted_ms, out.result.total.median_us / 1e3, table, w, now);
  return out;
}

}  // namespace flashnas
