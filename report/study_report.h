// `flashnas report`: one self-contained HTML page per study (inline SVG,
// CSS and a little script; no network access needed to open it), for people
// to look at a study rather than read tables:
//   - the frontier per budget: every trained trial at its highest rung
//     (predicted latency in ms against held-out bits per byte), the Pareto
//     front as a step line, the budget's limit; each point describes its
//     architecture on hover;
//   - every trial's training curve (training loss in nats per token against
//     tokens), the front's members highlighted;
//   - the latency table's validation: predicted against measured latency of
//     the held-out architectures per workload, with y = x, the ±10% lines and
//     the machine's measurement spread as a band;
//   - progress against compute: the best bits per byte at the study's
//     compared rung against the training tokens spent, beside any rival
//     studies named (e.g. a random search of the same config);
//   - every comparison of the study (flashnas compare): the table, verdict and plot;
//   - the study's config.
// The page checks itself in the browser: it lists, in the element
// #rendered, the points and curves each plot drew and any script errors, so
// a test can open it headless and compare with the database.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace flashnas {

struct StudyReportOptions {
  std::string db;                  // study database (SQLite file or PostgreSQL URL)
  std::string study;
  std::string lut_db;              // the latency table's database, when not where the study recorded it
  std::vector<std::string> rivals;  // other studies in `db` drawn beside this one's progress
};

// The page. InputError naming the study (or a rival) when it is absent.
// A latency table that cannot be opened is reported in the page, not thrown.
std::string study_report_html(const StudyReportOptions& o);

}  // namespace flashnas
