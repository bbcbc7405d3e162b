// `flashnas latency`: predict an architecture's workload latency from a LUT.
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "cli/device_options.h"
#include "profiler/lut_table.h"
#include "profiler/predict.h"

namespace flashnas::cli {

void add_latency_command(CLI::App& app) {
  struct Opts {
    std::string db, arch, workload, lut_device;
    DeviceOptions dev;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("latency", "Predict a workload's latency for an architecture from a LUT");
  cmd->add_option("--db", o->db, "LUT database (flashnas profile): a SQLite file or a postgresql:// URL")->required();
  cmd->add_option("--arch", o->arch, "ArchSpec JSON file")->required();
  cmd->add_option("--workload", o->workload, "batch=B,prompt=P,generate=G")->required();
  cmd->add_option("--lut-device", o->lut_device,
                  "Predict with this device's table (its fingerprint), e.g. a target device profiled elsewhere; "
                  "default: this machine's");
  cmd->add_flag("--json", o->json, "Print JSON");
  o->dev.add_to(*cmd);
  cmd->callback([o] {
    DeviceInfo info;
    const MeasureOptions m = o->dev.apply(&info);
    const ArchSpec spec = ArchSpec::load(o->arch);
    const Workload w = Workload::parse(o->workload);
    const LutTable table = LutTable::open(o->db, o->lut_device, info, dtype_name(m.dtype), o->dev.runtime());
    const Prediction p = predict(spec, w, table);
    if (o->json) {
      json j = p.to_json();
      j["workload"] = w.str();
      j["arch_hash"] = spec.hash();
      j["device"] = info.fingerprint();
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("%s on %s: %s\n", spec.name.empty() ? o->arch.c_str() : spec.name.c_str(), info.name.c_str(),
                w.str().c_str());
    for (size_t i = 0; i < p.layer_ms.size(); ++i) {
      std::printf("  %3zu %-9s %10.3f ms\n", i, spec.layers[i].type.c_str(), p.layer_ms[i]);
    }
    std::printf("  ends (embedding, norm, head) %.3f ms\n", p.ends_ms);
    std::printf("entry sums: prefill %.3f ms, decode %.3f ms", p.raw_prefill_ms, p.raw_decode_ms);
    if (w.generate > 0) std::printf(" (%.3f ms/token)", p.raw_decode_ms / static_cast<double>(w.generate));
    std::printf("\npredicted: %.3f ms (%s)\n", p.total_ms,
                p.model.is_null() ? "plain sum: the table has no latency model for this batch size"
                                  : ("latency model " + p.model["kind"].get<std::string>()).c_str());
    if (!table.report.is_null()) {
      std::printf("table verdict: %s\n", table.report["verdict"]["status"].get<std::string>().c_str());
    }
    for (const auto& c : table.commits) {
      if (c != info.commit) std::printf("note: the table was measured by flashnas %s; this build is %s\n", c.c_str(), info.commit.c_str());
    }
    for (const auto& s : p.interpolated) std::printf("interpolated: %s\n", s.c_str());
  });
}

}  // namespace flashnas::cli
