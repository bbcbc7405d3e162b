#include "report/study_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>

#include "common/error.h"
#include "common/format.h"
#include "common/json_io.h"
#include "common/svg.h"
#include "common/version.h"
#include "profiler/lut.h"
#include "report/plot.h"
#include "compare/compare_report.h"
#include "compare/compare_store.h"
#include "search/config.h"
#include "search/fidelity.h"
#include "search/frontier.h"
#include "study/study_store.h"

namespace flashnas {
namespace {

const char* kGrey = "#9aa5b5";
const char* kBlue = "#1f5fbf";
const char* kColors[] = {"#1f5fbf", "#d35400", "#27ae60", "#8e44ad", "#c0392b", "#16a085"};

std::string esc(const std::string& s) { return svg_escape(s); }

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

bool trained(const TrialRow& t) { return t.status == "done" && std::isfinite(t.bpb) && !t.genome.empty(); }

double predicted_ms(const TrialRow& t, const std::string& budget) {
  return t.predicted.contains(budget) && t.predicted.at(budget).is_number() ? t.predicted.at(budget).get<double>() : NAN;
}

std::string trial_tip(const TrialRow& t, const std::string& budget, const FrontierReport& fr) {
  std::string tip = "trial " + std::to_string(t.number) + " (" + t.origin + "): " + t.genome + " | " +
                    format_count(double(t.params)) + " parameters | " + fmt("%.2f ms", predicted_ms(t, budget)) + " | " +
                    fmt("%.4f bits/byte", t.bpb);
  if (fr.rungs > 0) tip += " at rung " + std::to_string(t.rung);
  return tip;
}

// The best bits per byte at the study's compared rung against the training
// tokens finished, over the runs in the order they finished (each rung's run
// costs its tokens beyond the rung it continues).
PlotSeries progress_series(const FrontierReport& fr, const std::string& name, const char* color) {
  const SearchConfig cfg = SearchConfig::from_json(fr.record.config, "study \"" + fr.study + "\"");
  const Rungs rungs(cfg);
  struct Event {
    std::string at;
    int64_t number = 0;
    int rung = 0;
    double bpb = NAN;
  };
  std::vector<Event> events;
  for (const auto& t : fr.trials) {
    if (t.reused_from || t.genome.empty()) continue;
    for (const auto& r : t.rungs) {
      if (r.status == "done" || r.status == "failed") events.push_back(Event{r.finished_at, t.number, r.rung, r.bpb});
    }
  }
  std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    return a.at != b.at ? a.at < b.at : a.number != b.number ? a.number < b.number : a.rung < b.rung;
  });
  PlotSeries s;
  s.name = name;
  s.color = color;
  s.line = true;
  s.step = true;
  s.radius = 2.5;
  const int compared = fr.rungs > 0 ? fr.rung : 0;
  int64_t spent = 0;
  double best = INFINITY;
  for (const auto& e : events) {
    spent += rungs.cost(std::min(e.rung, rungs.top()));
    if (e.rung != compared || !(e.bpb < best)) continue;
    best = e.bpb;
    s.x.push_back(double(spent) / 1e6);
    s.y.push_back(best);
    s.tips.push_back(fr.study + ": trial " + std::to_string(e.number) + " reaches " + fmt("%.4f", best) + " bits/byte after " +
                     format_count(double(spent)) + " training tokens");
  }
  // The line runs on to the tokens spent in all.
  if (!s.x.empty() && double(spent) / 1e6 > s.x.back()) {
    s.x.push_back(double(spent) / 1e6);
    s.y.push_back(best);
    s.tips.push_back(fr.study + ": " + format_count(double(spent)) + " training tokens in all");
  }
  return s;
}

std::string section_frontier(const FrontierReport& fr) {
  std::string h = "<h2 id=\"frontier\">Frontier per budget</h2>\n<p>Every trained trial at its highest rung: predicted "
                  "latency for the budget's workload against held-out bits per byte";
  if (fr.rungs > 0) {
    h += "; the frontier compares the trials at rung " + std::to_string(fr.rung) + " (" + format_count(double(fr.rung_tokens)) +
         " tokens), in blue; trials stopped at lower rungs are grey";
  }
  h += ". Hover a point for its architecture.</p>\n";
  for (size_t b = 0; b < fr.budgets.size(); ++b) {
    const BudgetFrontier& bf = fr.budgets[b];
    const std::string name = bf.budget.name;
    PlotSpec p;
    p.id = "frontier-" + std::to_string(b);
    p.title = bf.budget.describe();
    p.x_title = "predicted latency (ms)";
    p.y_title = "bits per byte";
    PlotSeries low, top, front;
    low.name = fr.rungs > 0 ? "lower rungs" : "";
    low.color = kGrey;
    top.name = fr.rungs > 0 ? "rung " + std::to_string(fr.rung) : "trained";
    top.color = kBlue;
    front.name = "frontier";
    front.color = "#e67e22";
    front.points = false;
    front.line = true;
    front.step = true;
    for (const auto& t : fr.trials) {
      if (!trained(t)) continue;
      PlotSeries& s = (fr.rungs > 0 && t.rung != fr.rung) ? low : top;
      s.x.push_back(predicted_ms(t, name));
      s.y.push_back(t.bpb);
      s.tips.push_back(trial_tip(t, name, fr));
    }
    for (const int64_t n : bf.front) {
      if (const TrialRow* t = fr.by_number(n)) front.x.push_back(predicted_ms(*t, name)), front.y.push_back(t->bpb);
    }
    p.series = {low, top, front};
    const double limit = bf.budget.limit_ms();
    if (std::isfinite(limit)) {
      double lo = INFINITY, hi = -INFINITY;
      for (const auto& s : p.series) {
        for (const double y : s.y) lo = std::min(lo, y), hi = std::max(hi, y);
      }
      if (std::isfinite(lo)) p.lines.push_back(PlotLine{limit, lo, limit, hi, "#c0392b", "budget " + fmt("%.4g ms", limit)});
    }
    h += plot_svg(p);
    h += "<table><tr><th>trial</th><th>architecture</th><th>parameters</th><th>ms</th><th>bits/byte</th></tr>\n";
    for (const int64_t n : bf.front) {
      const TrialRow* t = fr.by_number(n);
      if (!t) continue;
      h += "<tr><td>" + std::to_string(t->number) + "</td><td><code>" + esc(t->genome) + "</code></td><td>" +
           format_count(double(t->params)) + "</td><td>" + fmt("%.2f", predicted_ms(*t, name)) + "</td><td>" +
           fmt("%.4f", t->bpb) + "</td></tr>\n";
    }
    h += "</table>\n";
  }
  return h;
}

std::string section_curves(const FrontierReport& fr, const StudyStore& store) {
  std::map<int64_t, bool> on_front;
  for (const auto& bf : fr.budgets) {
    for (const int64_t n : bf.front) on_front[n] = true;
  }
  PlotSpec p;
  p.id = "curves";
  p.title = "Training curves";
  p.x_title = "training tokens (millions)";
  p.y_title = "training loss (nats/token)";
  p.width = 860;
  p.height = 420;
  // Grey first, the front's members on top.
  for (const bool front : {false, true}) {
    for (const auto& t : fr.trials) {
      if (!trained(t) || on_front.count(t.number) != size_t(front)) continue;
      // Each rung's run continues the one before: its points, joined in token order.
      std::map<int64_t, double> curve;
      for (int r = 0; r <= std::max(t.rung, 0); ++r) {
        for (const auto& c : store.curve(t.id, r)) {
          if (std::isfinite(c.train_loss)) curve[c.tokens] = c.train_loss;
        }
      }
      if (curve.empty()) continue;
      PlotSeries s;
      s.points = false;
      s.line = true;
      s.color = front ? kBlue : kGrey;
      s.opacity = front ? 0.9 : 0.45;
      for (const auto& [tokens, loss] : curve) s.x.push_back(double(tokens) / 1e6), s.y.push_back(loss);
      s.line_tip = "trial " + std::to_string(t.number) + ": " + t.genome;  // no legend entry: curves are many
      p.series.push_back(std::move(s));
    }
  }
  return "<h2 id=\"curves\">Training curves</h2>\n<p>Every trained trial's run to its highest rung (a promotion continues "
         "the same run); the frontier's members in blue. Hover a curve for its trial.</p>\n" +
         plot_svg(p);
}

std::string section_latency(const FrontierReport& fr, const std::string& lut_override) {
  std::string h = "<h2 id=\"latency\">Latency table</h2>\n";
  const json& lt = fr.record.lut_table;
  const std::string db = !lut_override.empty() ? lut_override : lt.value("db", std::string());
  if (db.empty()) return h + "<p>The study recorded no latency table.</p>\n";
  json report;
  try {
    LutStore lut(db, Access::read_only);
    const int64_t dev = lut.find_device(lt.value("device", std::string()));
    const auto r = lut.table_report(dev, lt.value("dtype", std::string("float32")), lt.value("runtime", std::string("eager")));
    if (!r) return h + "<p>The table in <code>" + esc(db) + "</code> has no profile report (it was never validated).</p>\n";
    report = *r;
  } catch (const std::exception& e) {
    return h + "<p>The latency table could not be read (" + esc(e.what()) + "); pass <code>--lut</code> where it is now.</p>\n";
  }
  h += "<p>Table <code>" + esc(db) + "</code>, device <code>" + esc(lt.value("device", std::string())) + "</code>, verdict <b>" +
       esc(report.contains("verdict") ? report["verdict"].value("status", std::string("?")) : std::string("?")) +
       "</b>. Held-out architectures measured end to end against the table's prediction; dashed: ±10%; shaded: the "
       "machine's own measurement spread (median difference of two measurements of the same architecture).</p>\n";
  std::map<std::string, double> spread;
  for (const auto& s : report.value("spread", json::array())) {
    if (s.contains("workload") && s.contains("median_abs_diff")) spread[s["workload"].get<std::string>()] = s["median_abs_diff"].get<double>();
  }
  int i = 0;
  for (const auto& v : report.value("validation", json::array())) {
    const std::string wl = v.value("workload", std::string());
    PlotSpec p;
    p.id = "lut-" + std::to_string(i++);
    p.title = wl;
    p.x_title = "measured (ms)";
    p.y_title = "predicted (ms)";
    p.width = 560;
    PlotSeries s;
    s.name = "held-out";
    double lo = INFINITY, hi = -INFINITY;
    for (const auto& r : v.value("rows", json::array())) {
      const double m = r.value("measured_ms", NAN), pr = r.value("predicted_ms", NAN);
      s.x.push_back(m);
      s.y.push_back(pr);
      s.tips.push_back(r.value("arch", std::string()) + " | measured " + fmt("%.2f ms", m) + ", predicted " + fmt("%.2f ms", pr) +
                       " (" + fmt("%+.1f%%", 100 * r.value("error", NAN)) + ")");
      if (std::isfinite(m)) lo = std::min(lo, m), hi = std::max(hi, m);
    }
    if (!std::isfinite(lo)) continue;
    p.lines.push_back(PlotLine{lo, lo, hi, hi, "#333", "y = x", false});
    p.lines.push_back(PlotLine{lo, 1.1 * lo, hi, 1.1 * hi, "#c0392b", "+10%"});
    p.lines.push_back(PlotLine{lo, 0.9 * lo, hi, 0.9 * hi, "#c0392b", "-10%"});
    if (spread.count(wl)) {
      const double d = spread[wl];
      p.lines.push_back(PlotLine{lo, (1 + d) * lo, hi, (1 + d) * hi, "#95a5a6", "spread"});
      p.lines.push_back(PlotLine{lo, (1 - d) * lo, hi, (1 - d) * hi, "#95a5a6", ""});
    }
    p.series = {s};
    h += plot_svg(p);
  }
  if (i == 0) h += "<p>The profile report holds no validation runs (profile with <code>--validate N</code>).</p>\n";
  return h;
}

std::string section_progress(const FrontierReport& fr, const std::vector<FrontierReport>& rivals) {
  PlotSpec p;
  p.id = "progress";
  p.title = "Best bits per byte against training compute";
  p.x_title = "training tokens finished (millions)";
  p.y_title = "best bits per byte";
  p.width = 760;
  p.series.push_back(progress_series(fr, fr.study, kColors[0]));
  for (size_t i = 0; i < rivals.size(); ++i) {
    p.series.push_back(progress_series(rivals[i], rivals[i].study, kColors[(i + 1) % 6]));
    p.series.back().dashed = true;
  }
  std::string h = "<h2 id=\"progress\">Progress against compute</h2>\n<p>The best held-out bits per byte at each study's "
                  "compared rung against the training tokens of the runs finished so far, in the order they finished";
  h += rivals.empty() ? ". Name rival studies with <code>--rival</code> (e.g. a random search of the same config) to draw them "
                        "beside it.</p>\n"
                      : "; rival studies dashed.</p>\n";
  return h + plot_svg(p);
}

std::string section_comparisons(const FrontierReport& fr, const std::string& db) {
  std::string h = "<h2 id=\"compare\">Comparisons</h2>\n";
  std::vector<std::string> names;
  try {
    CompareStore cs(db, Access::read_only);
    names = cs.names(fr.record.id);
  } catch (const std::exception& e) {
    return h + "<p>Comparisons could not be read: " + esc(e.what()) + "</p>\n";
  }
  if (names.empty()) return h + "<p>None yet (<code>flashnas compare</code>).</p>\n";
  for (const auto& name : names) {
    const CompareReport r = compare_report(db, fr.study, name);
    h += "<h3>" + esc(name) + "</h3>\n<p>" + std::to_string(r.runs_done) + " of " + std::to_string(r.runs) + " runs done" +
         (r.measured ? ", measured on " + esc(r.device) : ", latency predicted (not measured)") +
         (r.normalised ? fmt(" (latency at the table's machine speed; probe %.2fx", r.speed_min) +
                             fmt("..%.2fx its reference while measuring)", r.speed_max)
                       : "") +
         ".</p>\n";
    for (const auto& b : r.budgets) {
      h += "<h4>" + esc(b.budget.describe()) + "</h4>\n<table><tr><th>contender</th><th>architecture</th><th>parameters</th>"
           "<th>ms</th><th>bits/byte mean (sd)</th><th>seeds</th></tr>\n";
      for (const auto& c : b.rows) {
        h += "<tr><td>" + esc(c.c.label) + "</td><td><code>" + esc(c.c.description) + "</code></td><td>" +
             format_count(double(c.c.params)) + "</td><td>" + fmt("%.2f", c.latency_ms()) + "</td><td>" + fmt("%.4f", c.bpb_mean) +
             " (" + fmt("%.4f", c.bpb_sd) + ")</td><td>" + std::to_string(c.seeds.size()) + "</td></tr>\n";
      }
      h += "</table>\n<p><b>Verdict:</b> " + esc(b.verdict) + "</p>\n";
    }
    std::string svg = r.svg();
    if (svg.rfind("<?xml", 0) == 0) svg = svg.substr(svg.find("?>") + 2);
    h += "<div class=\"plot\">" + svg + "</div>\n";
  }
  return h;
}

const char* kStyle = R"(body{font-family:sans-serif;max-width:1100px;margin:24px auto;padding:0 16px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}h3{font-size:15px}h4{font-size:13px}
table{border-collapse:collapse;font-size:12px;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 6px;text-align:left}
code{font-size:11px}svg{display:block;margin:8px 0}pre{background:#f6f6f6;padding:8px;font-size:11px;overflow:auto}
#info{position:fixed;bottom:12px;left:12px;right:12px;background:#fffbe6;border:1px solid #e0c97f;padding:6px 10px;
font-size:12px;display:none}#rendered{display:none}.pt{cursor:pointer}.pt:hover{stroke:#000;stroke-width:2}
polyline.curve:hover{stroke-width:3})";

// Hover: the point's or curve's description in the info box. Self-check:
// what each plot drew and any script error, written into #rendered.
const char* kScript = R"(<script>
(function () {
  var errors = [];
  window.addEventListener('error', function (e) { errors.push(String(e.message)); });
  var ce = console.error;
  console.error = function () { errors.push(Array.prototype.join.call(arguments, ' ')); ce.apply(console, arguments); };
  document.addEventListener('DOMContentLoaded', function () {
    var info = document.getElementById('info');
    document.querySelectorAll('.pt, .curve').forEach(function (el) {
      el.addEventListener('mouseenter', function () {
        var t = el.querySelector('title');
        if (t) { info.textContent = t.textContent; info.style.display = 'block'; }
      });
      el.addEventListener('mouseleave', function () { info.style.display = 'none'; });
    });
    var plots = {};
    document.querySelectorAll('svg[data-plot]').forEach(function (s) {
      plots[s.getAttribute('data-plot')] = {
        points: s.querySelectorAll('circle.pt').length,
        curves: s.querySelectorAll('polyline.curve').length
      };
    });
    document.getElementById('rendered').textContent = JSON.stringify({errors: errors, plots: plots});
  });
})();
</script>
)";

}  // namespace

std::string study_report_html(const StudyReportOptions& o) {
  const FrontierReport fr = frontier_report(o.db, o.study);
  std::vector<FrontierReport> rivals;
  for (const auto& r : o.rivals) rivals.push_back(frontier_report(o.db, r));
  const StudyStore store(o.db, Access::read_only);

  std::time_t now = std::time(nullptr);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>flashnas study " + esc(fr.study) +
                  "</title>\n<style>" + kStyle + "</style>\n" + kScript + "</head>\n<body>\n";
  h += "<h1>Study <code>" + esc(fr.study) + "</code></h1>\n<p>Database <code>" + esc(o.db) + "</code>; written " + when +
       " by flashnas " + esc(version_string()) + " (" + esc(git_commit()) + ").</p>\n<pre>" + esc(fr.summary()) + "</pre>\n";
  h += "<p><a href=\"#frontier\">frontier</a> · <a href=\"#curves\">training curves</a> · <a href=\"#latency\">latency "
       "table</a> · <a href=\"#progress\">progress</a> · <a href=\"#compare\">comparisons</a> · <a href=\"#config\">config</a></p>\n";
  h += section_frontier(fr);
  h += section_curves(fr, store);
  h += section_latency(fr, o.lut_db);
  h += section_progress(fr, rivals);
  h += section_comparisons(fr, o.db);
  h += "<h2 id=\"config\">Config</h2>\n<details><summary>the study's config as stored</summary><pre>" +
       esc(fr.record.config.dump(2)) + "</pre></details>\n";
  h += "<div id=\"info\"></div>\n<pre id=\"rendered\"></pre>\n</body>\n</html>\n";
  return h;
}

}  // namespace flashnas
