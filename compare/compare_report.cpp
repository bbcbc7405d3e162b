#include "compare/compare_report.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "common/error.h"
#include "common/format.h"
#include "common/stats.h"
#include "common/svg.h"
#include "search/baselines.h"
#include "search/config.h"

namespace flashnas {
namespace {

json num(double v) { return std::isfinite(v) ? json(v) : json(); }

double sample_sd(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  const double m = mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size() - 1));
}

// Mean task rates over seeds (keys ending in _rate, and completion_bpb).
json mean_task(const std::vector<json>& tasks) {
  if (tasks.empty()) return nullptr;
  std::map<std::string, std::vector<double>> vals;
  for (const auto& t : tasks) {
    for (const auto& [k, v] : t.items()) {
      const bool rate = k.size() > 5 && k.compare(k.size() - 5, 5, "_rate") == 0;
      if ((rate || k == "completion_bpb") && v.is_number()) vals[k].push_back(v.get<double>());
    }
  }
  json out = json::object();
  for (const auto& [k, v] : vals) out[k] = mean(v);
  return out;
}

// basis: "measured at the table's speed", "measured" or "predicted": what
// the latencies are.
void judge(BudgetComparison& b, const std::string& basis_name) {
  const ContenderResult* pick = nullptr;
  for (const auto& r : b.rows) {
    if (r.c.label == "pick-best") pick = &r;
  }
  if (!pick) return;
  bool all = true, any = false;
  for (const auto& r : b.rows) {
    if (&r == pick) continue;
    const double ms = r.latency_ms();
    if (std::isfinite(ms) && !b.budget.met(ms)) {
      char buf[200];
      std::snprintf(buf, sizeof buf, "%s (%.2f ms %s)", r.c.label.c_str(), ms, basis_name.c_str());
      b.over_budget.push_back(buf);
      continue;
    }
    Versus v;
    v.label = r.c.label;
    // The study's other picks are shown against the best but not judged: the
    // question is whether the search's output beats the hand designs.
    v.judged = r.c.kind != "pick";
    if (pick->bpb.empty() || r.bpb.empty() || pick->waiting > 0 || r.waiting > 0) {
      v.outcome = "incomplete";
      if (v.judged) all = false;
    } else {
      v.delta = r.bpb_mean - pick->bpb_mean;
      v.spread = std::max(pick->bpb_sd, r.bpb_sd);
      v.outcome = v.delta > 2 * v.spread ? "wins" : v.delta > 0 ? "lower" : "not lower";
      if (v.judged) all = all && v.outcome == "wins";
    }
    if (v.judged) any = true;
    b.versus.push_back(v);
  }
  b.pick_wins = any && all;
  std::string lose, better_picks;
  for (const auto& v : b.versus) {
    if (v.judged && v.outcome != "wins") lose += (lose.empty() ? "" : ", ") + v.label + " (" + v.outcome + ")";
    if (!v.judged && v.outcome == "not lower") {
      char buf[160];
      std::snprintf(buf, sizeof buf, "%s (by %.4f, spread %.4f)", v.label.c_str(), -v.delta, v.spread);
      better_picks += (better_picks.empty() ? "" : ", ") + std::string(buf);
    }
  }
  const std::string basis = basis_name == "predicted" ? " (judged on predicted latency: not measured)"
                            : basis_name == "measured" ? " (measured latency)"
                                                       : " (measured latency at the table's machine speed)";
  if (!any) {
    b.verdict = "no baseline is within the budget" + basis + "; nothing to judge";
  } else if (b.pick_wins) {
    b.verdict = "the pick's retrained loss is lower than every in-budget baseline's by more than twice the seed spread" + basis;
  } else {
    b.verdict = "the pick does not beat every in-budget baseline by more than twice the seed spread" + basis + ": " + lose;
  }
  if (!better_picks.empty()) b.verdict += "; another of the study's picks is as low or lower: " + better_picks;
}

}  // namespace

double ContenderResult::latency_ms() const {
  if (measured_ref_ms) return *measured_ref_ms;
  if (measured_ms) return *measured_ms;
  return c.predicted_ms ? *c.predicted_ms : NAN;
}

CompareReport compare_report(CompareStore& store, const ComparisonRow& cmp, const std::string& study,
                             const std::vector<Budget>& budgets, const SearchSpace& space) {
  CompareReport rep;
  rep.study = study;
  rep.name = cmp.name;
  rep.config = cmp.config;
  const auto runs = store.runs(cmp.id);
  const auto lat = store.latency(cmp.id);
  const auto contenders = store.contenders(cmp.id);
  for (const auto& r : runs) {
    if (r.phase == "measure") continue;
    ++rep.runs;
    rep.runs_done += r.status == "done";
    rep.runs_failed += r.status == "failed";
  }
  rep.complete = rep.runs > 0 && rep.runs_done + rep.runs_failed == rep.runs;
  for (const auto& l : lat) {
    if (rep.device.empty()) rep.device = l.device;
  }
  const int rounds = cmp.config.value("rounds", 1);
  rep.measured = !lat.empty();
  rep.normalised = rep.measured;
  for (const auto& b : budgets) {
    BudgetComparison bc;
    bc.budget = b;
    for (const auto& c : contenders) {
      if (c.budget != b.name) continue;
      ContenderResult cr;
      cr.c = c;
      if (c.kind != "pick") cr.outside_space = outside_space(space, ArchSpec::from_json(c.arch, "contender " + c.label));
      cr.lr_trials = json::array();
      std::vector<json> tasks;
      for (const auto& r : runs) {
        if (r.arch_hash != c.arch_hash) continue;
        if (r.phase == "lr") cr.lr_trials.push_back({{"lr", r.lr}, {"val_loss", num(r.val_loss)}, {"status", r.status}});
        if (r.phase != "final") continue;
        cr.lr = r.lr;
        if (cr.recipe.is_null()) cr.recipe = r.recipe;
        if (r.status == "done") {
          cr.seeds.push_back(r.seed);
          cr.bpb.push_back(r.bpb);
          cr.loss.push_back(r.val_loss);
          if (!r.task.is_null()) tasks.push_back(r.task);
        } else if (r.status == "failed") {
          ++cr.failed;
        } else {
          ++cr.waiting;
        }
      }
      if (cr.lr_trials.size() > 1 && std::isfinite(cr.lr)) {
        double lo = INFINITY, hi = 0;
        for (const auto& t : cr.lr_trials) {
          lo = std::min(lo, t["lr"].get<double>());
          hi = std::max(hi, t["lr"].get<double>());
        }
        cr.lr_at_edge = cr.lr == lo || cr.lr == hi;
      }
      if (!cr.bpb.empty()) {
        cr.bpb_mean = mean(cr.bpb);
        cr.bpb_sd = sample_sd(cr.bpb);
        cr.bpb_min = *std::min_element(cr.bpb.begin(), cr.bpb.end());
        cr.bpb_max = *std::max_element(cr.bpb.begin(), cr.bpb.end());
      }
      cr.task = mean_task(tasks);
      // The fastest round's median, as the profiler keeps; and the fastest
      // at the table's speed, when every round has its probe reading.
      bool every_probe = true;
      for (const auto& l : lat) {
        if (l.arch_hash != c.arch_hash || l.workload != b.workload.str()) continue;
        ++cr.rounds;
        if (!cr.measured_ms || l.median_us / 1e3 < *cr.measured_ms) {
          cr.measured_ms = l.median_us / 1e3;
          cr.measured_p10_ms = l.p10_us / 1e3;
          cr.measured_p90_ms = l.p90_us / 1e3;
        }
        const double ratio = l.speed_ratio();
        if (!std::isfinite(ratio)) {
          every_probe = false;
          continue;
        }
        rep.speed_min = std::isfinite(rep.speed_min) ? std::min(rep.speed_min, ratio) : ratio;
        rep.speed_max = std::isfinite(rep.speed_max) ? std::max(rep.speed_max, ratio) : ratio;
        const double ref_ms = l.median_us / 1e3 / ratio;
        if (!cr.measured_ref_ms || ref_ms < *cr.measured_ref_ms) {
          cr.measured_ref_ms = ref_ms;
          cr.speed_ratio = ratio;
        }
      }
      if (!every_probe) rep.normalised = false;
      if (cr.rounds < rounds) rep.measured = false;
      bc.rows.push_back(std::move(cr));
    }
    rep.budgets.push_back(std::move(bc));
  }
  // One basis for every contender: at the table's speed only when all are.
  rep.normalised = rep.normalised && rep.measured;
  for (auto& bc : rep.budgets) {
    // A comparison measured in part is judged on predictions, saying so.
    if (!rep.measured) {
      for (auto& r : bc.rows) r.measured_ms.reset();
    }
    if (!rep.normalised) {
      for (auto& r : bc.rows) r.measured_ref_ms.reset(), r.speed_ratio = NAN;
      rep.speed_min = rep.speed_max = NAN;
    }
    judge(bc, !rep.measured ? "predicted" : rep.normalised ? "measured at the table's speed" : "measured");
    if (cmp.config.contains("only")) {
      std::string only;
      for (const auto& l : cmp.config["only"]) only += (only.empty() ? "" : ", ") + l.get<std::string>();
      bc.verdict += "; only these contenders were compared (--contender): " + only;
    }
  }
  return rep;
}

CompareReport compare_report(const std::filesystem::path& db, const std::string& study, const std::string& name) {
  StudyStore studies(db, Access::read_only);
  const StudyRow s = studies.get_study(study);
  CompareStore store(db.string(), Access::read_only);
  const auto cmp = store.find(s.id, name);
  if (!cmp) {
    std::string have;
    for (const auto& n : store.names(s.id)) have += (have.empty() ? "" : ", ") + n;
    throw InputError("--name: study \"" + study + "\" has no comparison \"" + name + "\"" +
                     (have.empty() ? " (it has none; run flashnas compare first)" : " (it has " + have + ")"));
  }
  const SearchConfig cfg = SearchConfig::from_json(s.config, "study \"" + study + "\" config");
  std::vector<Budget> budgets;
  for (const auto& b : cmp->config.at("budgets")) {
    for (const auto& cb : cfg.budgets) {
      if (cb.name == b.at("budget").at("name").get<std::string>()) budgets.push_back(cb);
    }
  }
  CompareReport rep = compare_report(store, *cmp, study, budgets, cfg.space);
  rep.db = db.string();
  return rep;
}

json CompareReport::to_json() const {
  json bs = json::array();
  for (const auto& b : budgets) {
    json rows = json::array();
    for (const auto& r : b.rows) {
      rows.push_back({{"label", r.c.label},
                      {"kind", r.c.kind},
                      {"architecture", r.c.description},
                      {"arch_hash", r.c.arch_hash},
                      {"params", r.c.params},
                      {"note", r.c.note},
                      {"predicted_ms", r.c.predicted_ms ? json(*r.c.predicted_ms) : json()},
                      {"measured_ms", r.measured_ms ? json(*r.measured_ms) : json()},
                      {"measured_p10_ms", r.measured_p10_ms ? json(*r.measured_p10_ms) : json()},
                      {"measured_p90_ms", r.measured_p90_ms ? json(*r.measured_p90_ms) : json()},
                      {"measured_at_table_speed_ms", r.measured_ref_ms ? json(*r.measured_ref_ms) : json()},
                      {"speed_ratio", num(r.speed_ratio)},
                      {"latency_ms", num(r.latency_ms())},
                      {"measurement_rounds", r.rounds},
                      {"lr", num(r.lr)},
                      {"lr_grid", r.lr_trials},
                      {"lr_at_edge", r.lr_at_edge},
                      {"seeds", r.seeds},
                      {"bpb", r.bpb},
                      {"loss", r.loss},
                      {"bpb_mean", num(r.bpb_mean)},
                      {"bpb_sd", num(r.bpb_sd)},
                      {"bpb_min", num(r.bpb_min)},
                      {"bpb_max", num(r.bpb_max)},
                      {"failed", r.failed},
                      {"waiting", r.waiting},
                      {"task", r.task},
                      {"recipe", r.recipe},
                      {"outside_space", r.outside_space}});
    }
    json vs = json::array();
    for (const auto& v : b.versus) {
      vs.push_back({{"label", v.label}, {"delta_bpb", num(v.delta)}, {"spread", num(v.spread)}, {"outcome", v.outcome},
                    {"judged", v.judged}});
    }
    bs.push_back({{"budget", b.budget.to_json()},
                  {"contenders", rows},
                  {"versus", vs},
                  {"over_budget", b.over_budget},
                  {"pick_wins", b.pick_wins},
                  {"verdict", b.verdict}});
  }
  return {{"study", study},       {"comparison", name},  {"db", db},         {"device", device},
          {"measured", measured}, {"normalised", normalised}, {"speed_ratio_min", num(speed_min)},
          {"speed_ratio_max", num(speed_max)}, {"complete", complete}, {"runs", runs}, {"runs_done", runs_done},
          {"runs_failed", runs_failed}, {"config", config}, {"budgets", bs}};
}

std::string CompareReport::table() const {
  std::string s;
  char buf[600];
  std::snprintf(buf, sizeof buf, "comparison \"%s\" of study %s: %lld/%lld runs done (%lld failed); latency %s%s\n",
                name.c_str(), study.c_str(), static_cast<long long>(runs_done), static_cast<long long>(runs),
                static_cast<long long>(runs_failed), measured ? "measured on " : "predicted (not measured)",
                measured ? device.c_str() : "");
  s += buf;
  if (normalised) {
    std::snprintf(buf, sizeof buf,
                  "machine speed while measuring: probe %.2fx..%.2fx the latency table's reference; the verdict "
                  "uses each latency at the table's speed (@table ms)\n",
                  speed_min, speed_max);
    s += buf;
  } else if (measured) {
    s += "latency as measured (no probe readings with these measurements, or the table has no reference): "
         "the machine's speed at the time is in the numbers\n";
  }
  const json& rc = config.value("recipe", json::object());
  std::string grid;
  for (const auto& v : config.value("lr_grid", json::array())) {
    char g[32];
    std::snprintf(g, sizeof g, "%.3g", v.get<double>());
    grid += (grid.empty() ? "" : ", ") + std::string(g);
  }
  std::snprintf(buf, sizeof buf, "recipe: %s tokens, batch %lld x %lld, %s schedule, %d seeds, learning rate %s\n",
                format_count(rc.value("tokens", 0.0)).c_str(), static_cast<long long>(rc.value("batch_size", int64_t(0))),
                static_cast<long long>(rc.value("seq_len", int64_t(0))), rc.value("schedule", std::string()).c_str(),
                config.value("seeds", 0),
                config.value("lr_mode", std::string()) == "grid"
                    ? ("picked per contender from {" + grid + "} by a short run").c_str()
                    : ("one for all: " + grid).c_str());
  s += buf;
  for (const auto& b : budgets) {
    s += "\n" + b.budget.describe() + "\n";
    std::snprintf(buf, sizeof buf, "  %-20s %-8s %10s %10s %10s %10s %8s %18s  %s\n", "contender", "kind", "params",
                  "pred ms", "meas ms", "@table ms", "lr", "bits/byte (sd)", "architecture");
    s += buf;
    for (const auto& r : b.rows) {
      char bpb[64] = "-";
      if (!r.bpb.empty()) std::snprintf(bpb, sizeof bpb, "%.4f (%.4f)", r.bpb_mean, r.bpb_sd);
      char pred[32] = "-", meas[32] = "-", ref[32] = "-", lr[32] = "-";
      if (r.c.predicted_ms) std::snprintf(pred, sizeof pred, "%.2f", *r.c.predicted_ms);
      if (r.measured_ms) std::snprintf(meas, sizeof meas, "%.2f", *r.measured_ms);
      if (r.measured_ref_ms) std::snprintf(ref, sizeof ref, "%.2f", *r.measured_ref_ms);
      if (std::isfinite(r.lr)) std::snprintf(lr, sizeof lr, "%.3g%s", r.lr, r.lr_at_edge ? "^" : "");
      std::snprintf(buf, sizeof buf, "  %-20s %-8s %10s %10s %10s %10s %8s %18s  %s%s%s\n", r.c.label.c_str(),
                    r.c.kind.c_str(), with_commas(r.c.params).c_str(), pred, meas, ref, lr, bpb, r.c.description.c_str(),
                    r.outside_space.empty() ? "" : " *",
                    r.waiting ? (" [" + std::to_string(r.waiting) + " runs waiting]").c_str() : "");
      s += buf;
    }
    for (const auto& v : b.versus) {
      if (v.outcome == "incomplete") continue;
      std::snprintf(buf, sizeof buf, "  pick vs %-20s %+.4f bits/byte (spread %.4f): %s%s\n", v.label.c_str(), v.delta, v.spread,
                    v.outcome.c_str(), v.judged ? "" : " (another pick of the study: not judged)");
      s += buf;
    }
    if (!b.over_budget.empty()) {
      std::string o;
      for (const auto& x : b.over_budget) o += (o.empty() ? "" : ", ") + x;
      s += "  over the budget, not judged: " + o + "\n";
    }
    for (const auto& r : b.rows) {
      const auto at = r.c.note.find("the same architecture as ");
      if (at != std::string::npos) s += "  = " + r.c.label + " is " + r.c.note.substr(at) + " (one set of runs serves both)\n";
    }
    bool edge = false;
    for (const auto& r : b.rows) {
      if (!r.outside_space.empty()) s += "  * " + r.c.label + " is outside the study's space: " + r.outside_space + "\n";
      edge = edge || r.lr_at_edge;
    }
    if (edge) s += "  ^ the best rate is still the highest or lowest tried: widen --lr-grid or raise --lr-extend\n";
    s += "  verdict: " + b.verdict + "\n";
  }
  return s;
}

std::string CompareReport::svg() const {
  const double pw = 460, ph = 320, ml = 64, mr = 150, mt = 40, mb = 52;
  const double W = pw + ml + mr, H = double(budgets.size()) * (ph + mt + mb);
  std::string s;
  char buf[600];
  s += svg_open(W, H);
  for (size_t bi = 0; bi < budgets.size(); ++bi) {
    const auto& b = budgets[bi];
    const double x0 = ml, y0 = double(bi) * (ph + mt + mb) + mt;
    SvgPanel panel{x0, y0, pw, ph};
    std::vector<double> xs, ys;
    for (const auto& r : b.rows) {
      if (!std::isfinite(r.latency_ms()) || r.bpb.empty()) continue;
      xs.push_back(r.latency_ms());
      ys.push_back(r.bpb_min);
      ys.push_back(r.bpb_max);
    }
    panel.fit(xs, ys, b.budget.limit_ms(), 0.08);
    auto X = [&](double v) { return panel.X(v); };
    auto Y = [&](double v) { return panel.Y(v); };
    s += panel.frame(b.budget.name + ": " + b.budget.workload.str(),
                     std::string(measured ? "measured" : "predicted") + " latency (ms)" +
                         (normalised ? ", at the table's machine speed" : ""),
                     "retrained held-out loss (bits/byte)");
    s += panel.budget_line(b.budget.limit_ms());
    for (const auto& r : b.rows) {
      const double x = r.latency_ms();
      if (!std::isfinite(x) || r.bpb.empty()) continue;
      const bool pick = r.c.kind == "pick";
      const char* color = pick ? "#1f5fbf" : r.c.kind == "rival" ? "#2a9d4b" : r.c.kind == "user" ? "#8a4fbf" : "#d2691e";
      // Seed spread (min to max over seeds) as an error bar.
      std::snprintf(buf, sizeof buf, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", X(x),
                    Y(r.bpb_min), X(x), Y(r.bpb_max), color);
      s += buf;
      if (pick) {
        std::snprintf(buf, sizeof buf,
                      "<rect x=\"%.1f\" y=\"%.1f\" width=\"9\" height=\"9\" fill=\"%s\"><title>%s</title></rect>\n",
                      X(x) - 4.5, Y(r.bpb_mean) - 4.5, color, svg_escape(r.c.label + ": " + r.c.description).c_str());
      } else {
        std::snprintf(buf, sizeof buf, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"><title>%s</title></circle>\n",
                      X(x), Y(r.bpb_mean), color, svg_escape(r.c.label + ": " + r.c.description).c_str());
      }
      s += buf;
      std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"%s\">%s</text>\n", X(x) + 6,
                    Y(r.bpb_mean) + 3, color, svg_escape(r.c.label).c_str());
      s += buf;
    }
    // Legend.
    const double lx = x0 + pw + 14;
    int k = 0;
    for (const auto& [kind, color] : std::vector<std::pair<std::string, std::string>>{
             {"study pick", "#1f5fbf"}, {"baseline", "#d2691e"}, {"rival study", "#2a9d4b"}, {"user design", "#8a4fbf"}}) {
      if (k == 0) {  // the picks are squares
        std::snprintf(buf, sizeof buf,
                      "<rect x=\"%.1f\" y=\"%.1f\" width=\"8\" height=\"8\" fill=\"%s\"/><text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                      lx - 4, y0 + 6 + 16 * k, color.c_str(), lx + 8, y0 + 14 + 16 * k, kind.c_str());
      } else {
        std::snprintf(buf, sizeof buf,
                      "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/><text x=\"%.1f\" y=\"%.1f\">%s</text>\n", lx,
                      y0 + 10 + 16 * k, color.c_str(), lx + 8, y0 + 14 + 16 * k, kind.c_str());
      }
      s += buf;
      ++k;
    }
    std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\">bars: seed min to max</text>\n", lx,
                  y0 + 14 + 16 * k);
    s += buf;
  }
  s += "</svg>\n";
  return s;
}

}  // namespace flashnas
