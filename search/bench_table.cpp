#include "search/bench_table.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "common/error.h"
#include "search/fidelity.h"

namespace flashnas {

SearchConfig bench_table_config(const SearchConfig& cfg, int64_t archs, const std::vector<int64_t>& fidelities) {
  if (archs < 1) throw InputError("--archs: must be >= 1, got " + std::to_string(archs));
  json doc = cfg.doc;
  json& s = doc["search"];
  if (!s.is_object()) s = json::object();
  if (!fidelities.empty()) s["fidelities"] = fidelities;
  if (!s.contains("fidelities")) {
    throw InputError("--fidelities: a bench table trains every architecture at every rung; give the rungs (training "
                     "tokens, increasing), e.g. --fidelities 16384,49152,131072, or [search] fidelities in " + cfg.source);
  }
  s["algorithm"] = "random";
  s["trials"] = archs;
  s["promote"] = "all";
  s.erase("eta");
  s.erase("token_budget");
  return SearchConfig::from_json(doc, cfg.source);
}

namespace {

std::string num(double v, const char* fmt = "%.6f") {
  if (!std::isfinite(v)) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

bool is_row(const TrialRow& t) { return t.slot && !t.reused_from && (t.status == "done" || t.status == "failed"); }

}  // namespace

std::string bench_table_csv(const SearchConfig& cfg, const std::vector<TrialRow>& trials) {
  const Rungs rungs(cfg);
  std::ostringstream out;
  out << "trial,genome,d_model,params,status";
  for (const auto& b : cfg.budgets) out << ',' << csv_field(b.name + "_ms");
  for (int r = 0; r < rungs.count(); ++r) {
    const std::string t = std::to_string(rungs.tokens(r));
    out << ",loss_" << t << ",bpb_" << t << ",train_s_" << t;
  }
  out << '\n';
  for (const auto& t : trials) {
    if (!is_row(t)) continue;
    std::string status = t.status;
    for (const auto& x : t.rungs) {
      if (x.status == "failed") status = "failed";
    }
    out << t.number << ',' << csv_field(t.genome) << ',' << t.d_model << ',' << t.params << ',' << status;
    for (const auto& b : cfg.budgets) out << ',' << num(t.predicted.at(b.name).get<double>(), "%.4f");
    for (int r = 0; r < rungs.count(); ++r) {
      const RungRow* x = t.rung_row(r);
      const bool done = x && x->status == "done";
      out << ',' << (done ? num(x->loss) : "") << ',' << (done ? num(x->bpb) : "") << ','
          << (done ? num(x->train_s, "%.1f") : "");
    }
    out << '\n';
  }
  return out.str();
}

json bench_table_summary(const SearchConfig& cfg, const std::vector<TrialRow>& trials) {
  const Rungs rungs(cfg);
  int64_t rows = 0, complete = 0, failed = 0, pruned = 0, reused = 0;
  for (const auto& t : trials) {
    if (t.status == "pruned") ++pruned;
    else if (t.reused_from) ++reused;
    if (!is_row(t)) continue;
    ++rows;
    if (t.status == "failed") ++failed;
    if (t.rung == rungs.top()) ++complete;
  }
  std::vector<int64_t> tokens;
  for (int r = 0; r < rungs.count(); ++r) tokens.push_back(rungs.tokens(r));
  return json{{"archs", cfg.search.trials}, {"rows", rows},     {"complete", complete}, {"failed", failed},
              {"pruned", pruned},           {"reused", reused}, {"rungs", tokens}};
}

}  // namespace flashnas
