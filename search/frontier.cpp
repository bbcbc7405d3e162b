#include "search/frontier.h"

#include "common/svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/error.h"
#include "common/format.h"
#include "search/fidelity.h"
#include "search/pareto.h"
#include "search/proxy.h"

namespace flashnas {
namespace {

double predicted(const TrialRow& t, const Budget& b) { return t.predicted.at(b.name).get<double>(); }

// The rates of a trial's task metrics (train/task_eval.h), for reports.
json task_rates(const json& task) {
  return json{{"generated", task.value("generated", 0)},     {"exact_rate", task.value("exact_rate", json())},
              {"json_records", task.value("json_records", 0)}, {"json_valid_rate", task.value("json_valid_rate", json())},
              {"json_equal_rate", task.value("json_equal_rate", json())}, {"completion_bpb", task.value("completion_bpb", json())}};
}

std::string format_percent_or_dash(const json& v) { return format_rate(v.is_number() ? v.get<double>() : NAN); }

bool is_trained(const TrialRow& t) { return t.status == "done" && !t.reused_from && std::isfinite(t.bpb); }
// Compared on the frontier: trained to the highest rung any trial reached.
bool compared(const TrialRow& t, int rung) { return is_trained(t) && t.rung == rung; }

// From the study's row and its trials, both read through one open store.
FrontierReport build(const SearchConfig& cfg, const std::filesystem::path& db, const std::string& study, StudyStore& store,
                     const StudyRow& s, std::optional<double> ref_bpb) {
  FrontierReport r;
  r.record = s;
  r.study = study;
  r.db = db.string();
  r.config_source = cfg.source;
  r.settings = cfg.search;
  r.finished = s.finished;
  r.trials = store.trials(s.id);
  double worst = 0;
  for (const auto& t : r.trials) {
    if (is_trained(t)) r.rung = std::max(r.rung, t.rung);
  }
  r.rungs = int(cfg.search.fidelities.size());
  r.tokens_spent = tokens_finished(Rungs(cfg), r.trials);
  r.proxy = latest_proxy_report(db, proxy_key(cfg.doc));
  if (r.rungs > 0) r.rung_tokens = cfg.search.fidelities.at(size_t(std::max(r.rung, 0)));
  for (const auto& t : r.trials) {
    if (t.status == "pruned") ++r.pruned;
    else if (t.status == "failed" && !t.reused_from) ++r.failed;
    else if (t.reused_from) ++r.reused;
    else if (t.status == "running" || t.status == "pending") ++r.in_flight;
    if (is_trained(t)) ++r.trained;
    if (compared(t, r.rung)) {
      ++r.n_compared;
      worst = std::max(worst, t.bpb);
    }
  }
  for (const auto& b : cfg.budgets) {
    BudgetFrontier f;
    f.budget = b;
    std::vector<ParetoPoint> pts;
    for (const auto& t : r.trials) {
      if (compared(t, r.rung)) pts.push_back({predicted(t, b), t.bpb, t.number});
    }
    for (const auto& p : pareto_front(pts)) f.front.push_back(p.id);
    f.ref_ms = b.limit_ms();
    f.ref_bpb = ref_bpb ? *ref_bpb : worst;
    f.hypervolume = hypervolume(pts, f.ref_ms, f.ref_bpb);
    r.budgets.push_back(f);
  }
  return r;
}

}  // namespace

FrontierReport frontier_report(const std::filesystem::path& db, const std::string& study, std::optional<double> ref_bpb) {
  if (!database_exists(db.string())) throw InputError(db.string() + ": no such database");
  StudyStore store(db, Access::read_only);
  const StudyRow s = store.get_study(study);
  const SearchConfig cfg = SearchConfig::from_json(s.config, "study \"" + study + "\" config");
  return build(cfg, db, study, store, s, ref_bpb);
}

FrontierReport frontier_report(const SearchConfig& cfg, const std::filesystem::path& db, const std::string& study) {
  if (!database_exists(db.string())) throw InputError(db.string() + ": no such database");
  StudyStore store(db, Access::read_only);
  return build(cfg, db, study, store, store.get_study(study), std::nullopt);
}

const TrialRow* FrontierReport::by_number(int64_t n) const {
  for (const auto& t : trials) {
    if (t.number == n) return &t;
  }
  return nullptr;
}

const TrialRow* FrontierReport::best() const {
  const TrialRow* b = nullptr;
  for (const auto& t : trials) {
    if (compared(t, rung) && (!b || t.bpb < b->bpb)) b = &t;
  }
  return b;
}

json FrontierReport::to_json() const {
  json bs = json::array();
  for (const auto& f : budgets) {
    json front = json::array();
    for (int64_t n : f.front) {
      const TrialRow& t = *by_number(n);
      front.push_back({{"trial", n}, {"genome", t.genome}, {"params", t.params}, {"predicted_ms", predicted(t, f.budget)},
                       {"loss", t.loss}, {"bpb", t.bpb}});
      if (!t.task.is_null()) front.back()["task"] = task_rates(t.task);
    }
    bs.push_back({{"budget", f.budget.to_json()},
                  {"frontier", front},
                  {"hypervolume", f.hypervolume},
                  {"reference", {{"ms", f.ref_ms}, {"bpb", f.ref_bpb}}}});
  }
  json j = {{"study", study},     {"db", db},          {"finished", finished}, {"trained", trained},
            {"tokens_spent", tokens_spent},
            {"failed", failed},   {"pruned", pruned},  {"reused", reused},     {"in_flight", in_flight},
            {"budgets", bs}};
  if (!proxy.is_null()) {
    j["proxy"] = {{"name", proxy.value("name", "")}, {"short_tokens", proxy["short_tokens"]},
                  {"long_tokens", proxy["long_tokens"]}, {"n", proxy["n"]}, {"spearman", proxy["spearman"]},
                  {"kendall_tau_b", proxy["kendall_tau_b"]}, {"created_at", proxy["created_at"]}};
  }
  if (rungs > 0) j["rung"] = {{"rung", rung}, {"tokens", rung_tokens}, {"compared", n_compared}, {"rungs", rungs}};
  if (const TrialRow* b = best()) {
    j["best"] = {{"trial", b->number}, {"genome", b->genome}, {"loss", b->loss}, {"bpb", b->bpb},
                 {"params", b->params}, {"predicted_ms", b->predicted}};
    if (!b->task.is_null()) j["best"]["task"] = task_rates(b->task);
  }
  return j;
}

std::string FrontierReport::summary() const {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "study %s: %lld trained (%s training tokens), %lld failed, %lld duplicates reused, %lld pruned by the budgets%s%s\n",
                study.c_str(), static_cast<long long>(trained), format_count(double(tokens_spent)).c_str(),
                static_cast<long long>(failed),
                static_cast<long long>(reused), static_cast<long long>(pruned),
                in_flight ? (", " + std::to_string(in_flight) + " in flight").c_str() : "",
                finished ? " (complete)" : "");
  std::string s = buf;
  if (rungs > 0) {
    std::snprintf(buf, sizeof buf, "compared at rung %d of %d (%lld tokens): %lld trials reached it\n", rung, rungs,
                  static_cast<long long>(rung_tokens), static_cast<long long>(n_compared));
    s += buf;
  }
  if (!proxy.is_null() && proxy["spearman"]["value"].is_number()) {
    const json& sp = proxy["spearman"];
    std::snprintf(buf, sizeof buf,
                  "proxy fidelity of this space and recipe: Spearman rho %.3f (90%% interval %.3f..%.3f) between %lld and "
                  "%lld tokens over %d architectures (flashnas proxy, %s)\n",
                  sp["value"].get<double>(), sp["ci90_low"].is_number() ? sp["ci90_low"].get<double>() : NAN,
                  sp["ci90_high"].is_number() ? sp["ci90_high"].get<double>() : NAN,
                  static_cast<long long>(proxy["short_tokens"].get<int64_t>()),
                  static_cast<long long>(proxy["long_tokens"].get<int64_t>()), proxy["n"].get<int>(),
                  proxy["created_at"].get<std::string>().c_str());
    s += buf;
  }
  if (const TrialRow* b = best()) {
    std::snprintf(buf, sizeof buf, "best: trial %lld  %s  loss %.4f (%.4f bits/%sbyte), %lld params\n",
                  static_cast<long long>(b->number), b->genome.c_str(), b->loss, b->bpb, b->task.is_null() ? "" : "completion ",
                  static_cast<long long>(b->params));
    s += buf;
    if (!b->task.is_null()) {
      const json r = task_rates(b->task);
      std::snprintf(buf, sizeof buf, "best's task metrics on %lld held-out records: exact match %s, valid JSON %s, equal JSON %s\n",
                    static_cast<long long>(b->task.value("generated", int64_t(0))), format_percent_or_dash(r["exact_rate"]).c_str(),
                    format_percent_or_dash(r["json_valid_rate"]).c_str(), format_percent_or_dash(r["json_equal_rate"]).c_str());
      s += buf;
    }
  }
  return s;
}

std::string FrontierReport::table() const {
  std::string s;
  char buf[512];
  for (const auto& f : budgets) {
    std::snprintf(buf, sizeof buf, "\nfrontier for %s  (hypervolume %.4g ms*bpb, reference %.4g ms, %.4f bpb)\n",
                  f.budget.describe().c_str(), f.hypervolume, f.ref_ms, f.ref_bpb);
    s += buf;
    // Task studies: bits per completion byte, and the exact-match and
    // valid-JSON rates on the held-out records (train/task_eval.h).
    bool task = false;
    for (int64_t n : f.front) task = task || !by_number(n)->task.is_null();
    if (task) {
      std::snprintf(buf, sizeof buf, "%6s %12s %10s %10s %10s %7s %7s  %s\n", "trial", "predicted ms", "params", "val loss",
                    "compl bpb", "exact", "json ok", "architecture");
    } else {
      std::snprintf(buf, sizeof buf, "%6s %12s %10s %10s %10s  %s\n", "trial", "predicted ms", "params", "val loss",
                    "bits/byte", "architecture");
    }
    s += buf;
    for (int64_t n : f.front) {
      const TrialRow& t = *by_number(n);
      if (task) {
        const json r = t.task.is_null() ? json::object() : task_rates(t.task);
        std::snprintf(buf, sizeof buf, "%6lld %12.2f %10lld %10.4f %10.4f %7s %7s  %s\n", static_cast<long long>(n),
                      predicted(t, f.budget), static_cast<long long>(t.params), t.loss, t.bpb, format_percent_or_dash(r.value("exact_rate", json())).c_str(),
                      format_percent_or_dash(r.value("json_valid_rate", json())).c_str(), t.genome.c_str());
      } else {
        std::snprintf(buf, sizeof buf, "%6lld %12.2f %10lld %10.4f %10.4f  %s\n", static_cast<long long>(n),
                      predicted(t, f.budget), static_cast<long long>(t.params), t.loss, t.bpb, t.genome.c_str());
      }
      s += buf;
    }
  }
  return s;
}

std::string FrontierReport::svg() const {
  const double pw = 420, ph = 300, ml = 64, mr = 16, mt = 40, mb = 52;
  const double W = double(budgets.size()) * (pw + ml + mr), H = ph + mt + mb;
  std::string s;
  char buf[512];
  s += svg_open(W, H);
  for (size_t bi = 0; bi < budgets.size(); ++bi) {
    const auto& f = budgets[bi];
    const double x0 = double(bi) * (pw + ml + mr) + ml, y0 = mt;
    std::vector<std::pair<double, double>> pts;
    for (const auto& t : trials) {
      if (compared(t, rung)) pts.emplace_back(predicted(t, f.budget), t.bpb);
    }
    SvgPanel panel{x0, y0, pw, ph};
    std::vector<double> xs, ys;
    for (const auto& [x, y] : pts) {
      xs.push_back(x);
      ys.push_back(y);
    }
    panel.fit(xs, ys, f.ref_ms, 0.05);
    auto X = [&](double v) { return panel.X(v); };
    auto Y = [&](double v) { return panel.Y(v); };
    s += panel.frame(f.budget.name + ": " + f.budget.workload.str(), "predicted latency (ms)", "validation loss (bits/byte)");
    s += panel.budget_line(f.ref_ms);
    for (const auto& [x, y] : pts) {
      std::snprintf(buf, sizeof buf, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#7a8ca8\" fill-opacity=\"0.7\"/>\n",
                    X(x), Y(y));
      s += buf;
    }
    // Frontier as a step line (a point on it dominates everything up and right).
    std::string path;
    for (size_t i = 0; i < f.front.size(); ++i) {
      const TrialRow& t = *by_number(f.front[i]);
      const double x = X(predicted(t, f.budget)), y = Y(t.bpb);
      if (i == 0) {
        std::snprintf(buf, sizeof buf, "M%.1f,%.1f", x, y);
      } else {
        const TrialRow& p = *by_number(f.front[i - 1]);
        std::snprintf(buf, sizeof buf, " L%.1f,%.1f L%.1f,%.1f", x, Y(p.bpb), x, y);
      }
      path += buf;
    }
    if (!path.empty()) {
      s += "<path d=\"" + path + "\" fill=\"none\" stroke=\"#1f5fbf\" stroke-width=\"2\"/>\n";
      for (int64_t n : f.front) {
        const TrialRow& t = *by_number(n);
        std::snprintf(buf, sizeof buf,
                      "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#1f5fbf\"><title>trial %lld: %s</title></circle>\n",
                      X(predicted(t, f.budget)), Y(t.bpb), static_cast<long long>(n), svg_escape(t.genome).c_str());
        s += buf;
      }
    }
  }
  s += "</svg>\n";
  return s;
}

}  // namespace flashnas
