// `flashnas bench`: measure a workload end to end with the real model and cache.
#include <cstdio>
#include <iostream>
#include <optional>

#include "cli/commands.h"
#include "cli/device_options.h"
#include "common/error.h"
#include "profiler/bench_judge.h"

namespace flashnas::cli {

void add_bench_command(CLI::App& app) {
  struct Opts {
    std::string arch, workload, db;
    DeviceOptions dev;
    int min_count = 5, rounds = 3;
    double min_seconds = 1.0;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("bench", "Measure a workload end to end (prefill + decode with the real cache)");
  cmd->add_option("--arch", o->arch, "ArchSpec JSON file")->required();
  cmd->add_option("--workload", o->workload, "batch=B,prompt=P,generate=G")->required();
  cmd->add_option("--min-count", o->min_count, "At least this many timed runs")->capture_default_str();
  cmd->add_option("--min-seconds", o->min_seconds, "And at least this much timed time")->capture_default_str();
  cmd->add_option("--rounds", o->rounds, "Rounds of the above; the fastest round (by median) is reported, as the "
                                          "profiler does")
      ->capture_default_str();
  cmd->add_option("--db", o->db, "A latency table of this device: also predict, and judge the difference");
  cmd->add_flag("--json", o->json, "Print JSON");
  o->dev.add_to(*cmd);
  cmd->callback([o] {
    DeviceInfo info;
    MeasureOptions m = o->dev.apply(&info);
    m.timing.warmup = 1;
    m.timing.min_count = o->min_count;
    m.timing.min_seconds = o->min_seconds;
    const ArchSpec spec = ArchSpec::load(o->arch);
    const Workload w = Workload::parse(o->workload);
    if (o->rounds < 1) throw InputError("--rounds: must be >= 1");
    std::optional<BenchJudgement> bj;
    BenchResult r;
    if (!o->db.empty()) {
      bj = bench_against_table(spec, w, m, o->rounds, o->db, info);
      r = bj->result;
    } else {
      r = bench_rounds(spec, w, m, o->rounds);
    }
    if (o->json) {
      json j = r.to_json();
      if (bj) j["table"] = bj->to_json();
      j["workload"] = w.str();
      j["rounds"] = o->rounds;
      j["arch_hash"] = spec.hash();
      j["device"] = info.fingerprint();
      j["commit"] = info.commit;
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("%s on %s (%d threads): %s\n", spec.name.empty() ? o->arch.c_str() : spec.name.c_str(),
                info.name.c_str(), info.threads, w.str().c_str());
    std::printf("measured: %.3f ms median (p10 %.3f, p90 %.3f, cv %.3f, %lld runs); prefill %.3f ms, decode %.3f ms",
                r.total.median_us / 1e3, r.total.p10_us / 1e3, r.total.p90_us / 1e3, r.total.cv,
                static_cast<long long>(r.total.count), r.prefill.median_us / 1e3, r.decode.median_us / 1e3);
    if (w.generate > 0) std::printf(" (%.3f ms/token)", r.decode.median_us / 1e3 / static_cast<double>(w.generate));
    std::printf("\n");
    if (bj) {
      std::printf("predicted: %.3f ms (%+.1f%%)%s\n", bj->predicted_ms, 100 * bj->judgement.error,
                  bj->judgement.beyond ? "" : ", within the table's validated error");
      if (bj->judgement.beyond) std::printf("note: %s\n", bj->judgement.note.c_str());
    }
  });
}

}  // namespace flashnas::cli
