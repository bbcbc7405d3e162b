// `flashnas report`: a study as one self-contained HTML page.
#include <cstdio>

#include "cli/commands.h"
#include "common/error.h"
#include "common/files.h"
#include "report/study_report.h"

namespace flashnas::cli {

void add_report_command(CLI::App& app) {
  struct Opts {
    StudyReportOptions r;
    std::string out;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "report", "Write a study as one self-contained HTML page: frontier per budget (architecture on hover), training "
                "curves, the latency table's validation, progress against compute, comparisons");
  cmd->add_option("--db", o->r.db, "Study database: a SQLite file, or postgresql://user@host:port/dbname")->required();
  cmd->add_option("--study", o->r.study, "Study name")->required();
  cmd->add_option("--out", o->out, "The HTML file to write (default: STUDY.html in the working directory)");
  cmd->add_option("--lut", o->r.lut_db, "The latency table's database, when not where the study recorded it");
  cmd->add_option("--rival", o->r.rivals, "Another study in --db drawn beside this one's progress, e.g. a random search (repeatable)");
  cmd->callback([o] {
    const std::string out = o->out.empty() ? o->r.study + ".html" : o->out;
    if (!out.ends_with(".html") && !out.ends_with(".htm")) throw InputError("--out \"" + out + "\": must end in .html");
    const std::string page = study_report_html(o->r);  // everything read before anything is written
    write_file_atomic(out, page);
    std::printf("report: %s (%zu KB); open it in any browser, no network needed\n", out.c_str(), page.size() / 1024);
  });
}

}  // namespace flashnas::cli
