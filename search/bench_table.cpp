#include "search/bench_table.h"

#include <cmath>
#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <utility>

#include "common/error.h"
#include "common/files.h"
#include "common/db.h"
#include "common/version.h"
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
  s.erase("finalists");
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

BenchTableSummary bench_table_summary(const SearchConfig& cfg, const std::vector<TrialRow>& trials) {
  const Rungs rungs(cfg);
  BenchTableSummary s;
  s.archs = cfg.search.trials;
  for (const auto& t : trials) {
    if (t.status == "pruned") ++s.pruned;
    else if (t.reused_from) ++s.reused;
    if (!is_row(t)) continue;
    ++s.rows;
    if (t.status == "failed") ++s.failed;
    if (t.rung == rungs.top()) ++s.complete;
  }
  for (int r = 0; r < rungs.count(); ++r) s.rungs.push_back(rungs.tokens(r));
  return s;
}

json BenchTableSummary::to_json() const {
  json j = {{"archs", archs}, {"rows", rows},     {"complete", complete}, {"failed", failed},
            {"pruned", pruned}, {"reused", reused}, {"rungs", rungs}};
  if (!study.empty()) j["study"] = study;
  if (!db.empty()) j["db"] = db;
  return j;
}

std::string BenchTableSummary::text(const std::string& csv) const {
  return "bench table \"" + study + "\": " + std::to_string(rows) + " architectures trained (" + std::to_string(complete) +
         " at every rung, " + std::to_string(failed) + " failed), " + std::to_string(pruned) + " drawn over the budgets, " +
         std::to_string(reused) + " duplicates" + (csv.empty() ? "" : "; written to " + csv) + "\n";
}

namespace {

// One CSV line: fields separated by commas, "quoted" where they hold one.
std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::string cell;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cell += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cell += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.push_back(std::exchange(cell, ""));
    } else {
      cell += c;
    }
  }
  out.push_back(cell);
  return out;
}

}  // namespace

BenchTable read_bench_table(const std::filesystem::path& csv) {
  BenchTable t;
  t.path = csv;
  std::istringstream in(read_file(csv));
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    auto fields = split_csv(line);
    if (t.columns.empty()) {
      t.columns = std::move(fields);
      for (const auto& c : t.columns) {
        if (c.rfind("loss_", 0) != 0) continue;
        try {
          t.rungs.push_back(std::stoll(c.substr(5)));
        } catch (const std::exception&) {
          throw InputError(csv.string() + ":1: column \"" + c + "\": expected loss_<tokens>");
        }
      }
      if (t.rungs.empty()) {
        throw InputError(csv.string() + ":1: no loss_<tokens> columns; is this a table written by flashnas bench-table?");
      }
      continue;
    }
    if (fields.size() != t.columns.size()) {
      throw InputError(csv.string() + ":" + std::to_string(n) + ": expected " + std::to_string(t.columns.size()) +
                       " fields, got " + std::to_string(fields.size()));
    }
    t.rows.push_back(std::move(fields));
  }
  if (t.columns.empty()) throw InputError(csv.string() + ": empty file; expected a table written by flashnas bench-table");
  // Every loss must be a number or empty.
  for (size_t r = 0; r < t.rows.size(); ++r) {
    for (const int64_t k : t.rungs) {
      const std::string& v = t.rows[r][t.column("loss_" + std::to_string(k))];
      if (v.empty()) continue;
      char* end = nullptr;
      std::strtod(v.c_str(), &end);
      if (end != v.c_str() + v.size()) {
        throw InputError(csv.string() + ": row " + std::to_string(r + 1) + ", column loss_" + std::to_string(k) +
                         ": \"" + v + "\" is not a number");
      }
    }
  }
  return t;
}

size_t BenchTable::column(const std::string& name) const {
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i] == name) return i;
  }
  throw InputError(path.string() + ": no column \"" + name + "\"");
}

std::vector<double> BenchTable::losses(int64_t tokens, const std::string& flag) const {
  if (std::find(rungs.begin(), rungs.end(), tokens) == rungs.end()) {
    std::string have;
    for (const int64_t r : rungs) have += (have.empty() ? "" : ", ") + std::to_string(r);
    throw InputError(flag + " " + std::to_string(tokens) + ": the table " + path.string() + " has no rung of " +
                     std::to_string(tokens) + " tokens; its rungs: " + have);
  }
  const size_t c = column("loss_" + std::to_string(tokens));
  std::vector<double> out;
  for (const auto& row : rows) out.push_back(row[c].empty() ? NAN : std::strtod(row[c].c_str(), nullptr));
  return out;
}

std::vector<int64_t> parse_token_list(const std::string& text, const std::string& flag) {
  std::vector<int64_t> out;
  if (text.empty()) return out;
  std::stringstream ss(text);
  for (std::string x; std::getline(ss, x, ',');) {
    try {
      size_t used = 0;
      const long long v = std::stoll(x, &used);
      if (used != x.size() || v <= 0) throw std::invalid_argument(x);
      out.push_back(v);
    } catch (const std::exception&) {
      throw InputError(flag + ": \"" + x + "\" is not a positive number of tokens; give a comma-separated list, "
                       "e.g. 16384,49152,131072");
    }
  }
  return out;
}

json bench_table_meta(const SearchConfig& cfg, const StudyRow& study, const BenchTableSummary& summary,
                      const std::string& config_source, int threads) {
  return json{{"format", "flashnas.bench_table/1"},
              {"summary", summary.to_json()},
              {"config_source", config_source},
              {"config", cfg.doc},
              {"lut_table", study.lut_table},
              {"threads", threads},
              {"flashnas", {{"version", version_string()}, {"commit", git_commit()}}},
              {"written_at", utc_now()}};
}

BenchTableSummary bench_table_read_back(const SearchConfig& cfg, const std::string& db, const std::string& study_name,
                                        const std::string& csv, const std::string& config_source, int threads) {
  if (!database_exists(db)) throw InputError("--db " + db + ": no such database");
  StudyStore store(db, Access::read_only);
  const StudyRow study = store.get_study(study_name);
  if (study.config != cfg.doc) {
    throw InputError("--study \"" + study_name + "\" in " + db + " was made with another config, --archs or --fidelities");
  }
  const auto trials = store.trials(study.id);
  BenchTableSummary summary = bench_table_summary(cfg, trials);
  summary.study = study_name;
  summary.db = db;
  if (!csv.empty()) {
    write_file_atomic(csv, bench_table_csv(cfg, trials));
    write_file_atomic(csv + ".json", bench_table_meta(cfg, study, summary, config_source, threads).dump(2) + "\n");
  }
  return summary;
}

}  // namespace flashnas
