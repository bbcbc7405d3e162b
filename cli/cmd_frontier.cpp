// `flashnas frontier`: a study's Pareto set of loss against predicted latency
// per budget, as a table (or JSON) and an SVG plot.
#include <cstdio>
#include <iostream>
#include <optional>

#include "cli/commands.h"
#include "common/error.h"
#include "common/files.h"
#include "search/frontier.h"

namespace flashnas::cli {

void add_frontier_command(CLI::App& app) {
  struct Opts {
    std::string db, study, svg;
    double ref_bpb = 0;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("frontier", "Show a study's loss-latency frontier per budget (table, JSON, SVG)");
  cmd->add_option("--db", o->db, "Study database: a SQLite file, or postgresql://user@host:port/dbname")->required();
  cmd->add_option("--study", o->study, "Study name")->required();
  cmd->add_option("--svg", o->svg, "Write the plot to this SVG file");
  cmd->add_option("--ref-bpb", o->ref_bpb,
                  "Reference loss (bits/byte) for the hypervolume; default: the study's worst trained loss. Use the same "
                  "value to compare studies");
  cmd->add_flag("--json", o->json, "Print JSON instead of the table");
  cmd->callback([o] {
    if (o->ref_bpb < 0) throw InputError("--ref-bpb: must be positive");
    const FrontierReport r =
        frontier_report(o->db, o->study, o->ref_bpb > 0 ? std::optional<double>(o->ref_bpb) : std::nullopt);
    if (!o->svg.empty()) write_file_atomic(o->svg, r.svg());
    if (o->json) {
      std::cout << r.to_json().dump(2) << "\n";
      return;
    }
    std::printf("%s%s", r.summary().c_str(), r.table().c_str());
    if (!o->svg.empty()) std::printf("\nplot: %s\n", o->svg.c_str());
  });
}

}  // namespace flashnas::cli
