#include "search/proxy.h"

#include "search/bench_table.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <optional>
#include <set>

#include "common/error.h"
#include "common/stop.h"
#include "common/files.h"
#include "common/sha256.h"
#include "common/db.h"
#include "common/stats.h"
#include "common/threads.h"
#include "profiler/validate.h"
#include "study/study_store.h"
#include "train/training_data.h"
#include "train/trainer.h"

namespace flashnas {
namespace fs = std::filesystem;
namespace {

struct Candidate {
  std::string hash, text;
  ArchSpec arch;
};

// The architectures: a study's trained trials, or distinct draws from the space.
std::vector<Candidate> candidates(const SearchConfig& cfg, const ProxyOptions& o) {
  std::vector<Candidate> out;
  std::set<std::string> seen;
  if (!o.study.empty()) {
    StudyStore store(o.db, Access::read_only);
    const StudyRow s = store.get_study(o.study);
    for (const auto& t : store.trials(s.id)) {
      if (t.status != "done" || t.reused_from || !seen.insert(t.hash).second) continue;
      out.push_back({t.hash, t.genome, ArchSpec::from_json(parse_json(t.arch, "trial " + std::to_string(t.number) + ", column arch"), "trial " + std::to_string(t.number))});
      if (int(out.size()) == o.archs) break;
    }
    if (int(out.size()) < o.archs) {
      throw InputError("--archs: study \"" + o.study + "\" has " + std::to_string(out.size()) +
                       " distinct trained architectures; ask for at most that many");
    }
    return out;
  }
  SearchSpace sp = cfg.space;
  sp.width_mode = SearchSpace::Width::Gene;
  Rng rng(o.seed ^ 0x9b0c5eedULL);
  // Draw until N distinct architectures, or until 5000 draws in a row bring
  // nothing new (the space, or what its constraints allow, is smaller).
  int misses = 0, draws = 0;
  while (int(out.size()) < o.archs && misses < 5000) {
    ++draws;
    const Genome g = sp.random(rng);
    ArchSpec a = sp.decode(g);
    if (sp.violation(g, a) || !seen.insert(a.hash()).second) {
      ++misses;
      continue;
    }
    misses = 0;
    out.push_back({a.hash(), sp.genome_text(g), std::move(a)});
  }
  if (int(out.size()) < o.archs) {
    throw InputError("--archs: " + std::to_string(draws) + " draws from the space in " + cfg.source + " gave only " +
                     std::to_string(out.size()) + " distinct architectures that meet its constraints; ask for at most "
                     "that many");
  }
  return out;
}

void open_tables(Db& db) {
  require_schema_version(db, "proxy_schema_version", kProxySchemaVersion, "proxy");
  db.ensure_tables(
      "CREATE TABLE IF NOT EXISTS proxy_runs(name TEXT NOT NULL, config_hash TEXT NOT NULL, arch_hash TEXT NOT NULL,"
      " arch TEXT NOT NULL, genome TEXT NOT NULL, tokens INTEGER NOT NULL,"
      " status TEXT NOT NULL CHECK(status IN ('done','failed')), val_loss REAL, val_bpb REAL, error TEXT,"
      " wall_s REAL NOT NULL, finished_at TEXT NOT NULL, PRIMARY KEY(name, arch_hash, tokens));"
      "CREATE TABLE IF NOT EXISTS proxy_reports(id INTEGER PRIMARY KEY, name TEXT NOT NULL, report TEXT NOT NULL,"
      " created_at TEXT NOT NULL);");
}

}  // namespace

double kendall_tau(const std::vector<double>& a, const std::vector<double>& b) {
  const size_t n = a.size();
  if (n != b.size() || n < 2) return NAN;
  double conc = 0, disc = 0, ties_a = 0, ties_b = 0;
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      const double da = a[i] - a[j], db = b[i] - b[j];
      if (da == 0 && db == 0) continue;
      if (da == 0) {
        ++ties_a;
      } else if (db == 0) {
        ++ties_b;
      } else if ((da > 0) == (db > 0)) {
        ++conc;
      } else {
        ++disc;
      }
    }
  }
  const double denom = std::sqrt((conc + disc + ties_a) * (conc + disc + ties_b));
  return denom > 0 ? (conc - disc) / denom : NAN;
}

RankAgreement bootstrap(const std::vector<double>& a, const std::vector<double>& b,
                        const std::function<double(const std::vector<double>&, const std::vector<double>&)>& stat,
                        uint64_t seed, int resamples) {
  RankAgreement r;
  r.value = stat(a, b);
  if (a.size() < 3) return r;
  Rng rng(seed);
  std::vector<double> values;
  std::vector<double> ra(a.size()), rb(b.size());
  for (int i = 0; i < resamples; ++i) {
    for (size_t j = 0; j < a.size(); ++j) {
      const size_t k = size_t(rng.below(int64_t(a.size())));
      ra[j] = a[k];
      rb[j] = b[k];
    }
    const double v = stat(ra, rb);
    if (std::isfinite(v)) values.push_back(v);
  }
  std::sort(values.begin(), values.end());
  r.lo = quantile_sorted(values, 0.05);
  r.hi = quantile_sorted(values, 0.95);
  return r;
}

double top_k_overlap(const std::vector<double>& a, const std::vector<double>& b, int k) {
  if (k < 1 || size_t(k) > a.size() || a.size() != b.size()) return NAN;
  auto lowest = [k](const std::vector<double>& v) {
    std::vector<size_t> idx(v.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](size_t x, size_t y) { return v[x] < v[y]; });
    return std::set<size_t>(idx.begin(), idx.begin() + k);
  };
  const auto sa = lowest(a), sb = lowest(b);
  int both = 0;
  for (size_t i : sa) both += int(sb.count(i));
  return double(both) / double(k);
}

json ProxyReport::to_json() const {
  auto ra = [](const RankAgreement& r) {
    auto num = [](double x) { return std::isfinite(x) ? json(x) : json(); };
    return json{{"value", num(r.value)}, {"ci90_low", num(r.lo)}, {"ci90_high", num(r.hi)}};
  };
  return json{{"n", n},
              {"failed", failed},
              {"spearman", ra(spearman)},
              {"kendall_tau_b", ra(kendall)},
              {"top_k", k},
              {"top_k_overlap", std::isfinite(top_k_overlap) ? json(top_k_overlap) : json()},
              {"rows", rows}};
}

std::string proxy_key(const json& doc) {
  json part = json::object();
  for (const char* k : {"space", "constraints", "train"}) {
    if (doc.contains(k)) part[k] = doc.at(k);
  }
  return sha256_hex(part.dump());
}

json latest_proxy_report(const fs::path& db_path, const std::string& key) {
  if (!is_database_url(db_path.string()) && !fs::exists(db_path)) return nullptr;
  Db db(db_path, Access::read_only);
  if (!db.has_table("proxy_reports")) return nullptr;
  Stmt q(db, "SELECT report, created_at FROM proxy_reports ORDER BY id DESC");
  while (q.step()) {
    json r = parse_json(q.text(0), db_path.string() + ": proxy_reports");
    if (r.value("space_key", "") != key) continue;
    r["created_at"] = q.text(1);
    return r;
  }
  return nullptr;
}

ProxyReport agreement(const std::vector<std::pair<std::string, std::string>>& ids, const std::vector<double>& short_loss,
                      const std::vector<double>& long_loss, uint64_t seed) {
  ProxyReport rep;
  std::vector<double> s, l;
  rep.rows = json::array();
  for (size_t i = 0; i < ids.size(); ++i) {
    const double a = short_loss[i], b = long_loss[i];
    rep.rows.push_back({{"hash", ids[i].first},
                        {"genome", ids[i].second},
                        {"short_loss", std::isfinite(a) ? json(a) : json()},
                        {"long_loss", std::isfinite(b) ? json(b) : json()}});
    if (std::isfinite(a) && std::isfinite(b)) {
      s.push_back(a);
      l.push_back(b);
    } else {
      ++rep.failed;
    }
  }
  rep.n = int(s.size());
  rep.k = std::max(1, rep.n / 4);
  rep.spearman = bootstrap(s, l, spearman, seed);
  rep.kendall = bootstrap(s, l, kendall_tau, seed);
  rep.top_k_overlap = top_k_overlap(s, l, rep.k);
  return rep;
}

ProxyReport proxy_from_table(const std::filesystem::path& csv, int64_t short_tokens, int64_t long_tokens, uint64_t seed) {
  if (long_tokens <= short_tokens) {
    throw InputError("--long: must be more tokens than --short (" + std::to_string(short_tokens) + "), got " +
                     std::to_string(long_tokens));
  }
  const BenchTable t = read_bench_table(csv);
  const auto a = t.losses(short_tokens, "--short"), b = t.losses(long_tokens, "--long");
  const size_t trial = t.column("trial"), genome = t.column("genome");
  std::vector<std::pair<std::string, std::string>> ids;
  for (const auto& row : t.rows) ids.emplace_back("trial " + row[trial], row[genome]);
  ProxyReport rep = agreement(ids, a, b, seed);
  if (rep.n < 4) {
    throw InputError("--table " + csv.string() + ": only " + std::to_string(rep.n) + " rows reached both rungs; at least 4 are needed");
  }
  return rep;
}

ProxyReport run_proxy(const SearchConfig& cfg, const ProxyOptions& o, const std::function<void(const std::string&)>& log) {
  check_path_name(o.name, "--name");
  if (o.archs < 4) throw InputError("--archs: must be >= 4 (the top-k overlap takes the best quarter), got " + std::to_string(o.archs));
  if (o.short_tokens <= 0) throw InputError("--short: must be > 0 tokens");
  if (o.long_tokens <= o.short_tokens) {
    throw InputError("--long: must be more tokens than --short (" + std::to_string(o.short_tokens) + "), got " +
                     std::to_string(o.long_tokens));
  }
  checked_threads(o.threads, "--threads");
  const TrainingData data = open_training_data(cfg.data, cfg.recipe.val_fraction, cfg.recipe.seed,
                                               cfg.source + ": field \"train.data\"");
  const std::vector<Candidate> cands = candidates(cfg, o);
  const auto& tok = data.tokenizer;
  const auto& ds = data.dataset;
  TrainRecipe recipe = cfg.recipe;
  if (o.threads > 0) recipe.threads = o.threads;
  // Every run is checked before the first one is trained or anything is written.
  for (const int64_t tokens : {o.short_tokens, o.long_tokens}) {
    TrainRecipe r = recipe;
    r.tokens = tokens;
    Trainer(cands.front().arch, ds, tok, r, fs::path()).check();
  }

  const std::string config_hash = sha256_hex(cfg.doc.dump());
  Db db(o.db, true);
  open_tables(db);
  {
    Stmt q(db, "SELECT DISTINCT config_hash FROM proxy_runs WHERE name = ?");
    q.bind(1, o.name);
    if (q.step() && q.text(0) != config_hash) {
      throw InputError(o.db.string() + ": proxy experiment \"" + o.name +
                       "\" was run with another config; rerun with that config, or pass a new --name");
    }
  }
  auto stored = [&](const std::string& hash, int64_t tokens) -> std::optional<double> {
    Stmt q(db, "SELECT status, val_loss FROM proxy_runs WHERE name=? AND arch_hash=? AND tokens=?");
    q.bind(1, o.name).bind(2, hash).bind(3, tokens);
    if (!q.step()) return std::nullopt;
    return q.text(0) == "done" ? q.real(1) : NAN;
  };
  const fs::path runs = artifacts_root(o.db.string(), o.artifacts) / ("proxy-" + o.name);
  int todo = 0;
  for (const auto& c : cands) {
    for (const int64_t t : {o.short_tokens, o.long_tokens}) todo += stored(c.hash, t) ? 0 : 1;
  }
  int done = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& c : cands) {
    for (const int64_t tokens : {o.short_tokens, o.long_tokens}) {
      if (stored(c.hash, tokens)) continue;
      const fs::path dir = runs / (c.hash.substr(0, 16) + "-" + std::to_string(tokens));
      TrainRecipe r = recipe;
      r.tokens = tokens;
      const auto ts = std::chrono::steady_clock::now();
      std::string status = "done", error;
      TrainResult res;
      try {
        fs::remove_all(dir);  // a run killed in flight starts again
        fs::create_directories(dir.parent_path());
        res = Trainer(c.arch, ds, tok, r, dir).run(false);
        // A stop request ends the run early: nothing of it is recorded (the
        // next command trains it again from the start).
        throw_if_stopped("proxy: stopped in a run; run the same command again to continue");
        fs::remove_all(dir / "checkpoint");
      } catch (const DivergedError& e) {
        status = "failed";
        error = e.what();
      }
      const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count();
      Stmt ins(db,
               "INSERT OR REPLACE INTO proxy_runs(name, config_hash, arch_hash, arch, genome, tokens, status, val_loss,"
               " val_bpb, error, wall_s, finished_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)");
      ins.bind(1, o.name).bind(2, config_hash).bind(3, c.hash).bind(4, c.arch.to_json().dump()).bind(5, c.text);
      ins.bind(6, tokens).bind(7, status);
      if (status == "done") {
        ins.bind(8, res.val_loss).bind(9, res.val_bpb).bind_null(10);
      } else {
        ins.bind_null(8).bind_null(9).bind(10, error);
      }
      ins.bind(11, wall).bind(12, utc_now()).run();
      ++done;
      const double spent = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      char buf[400];
      std::snprintf(buf, sizeof buf, "[%d/%d] %s at %lld tokens: %s in %.0f s, ETA %.0f s", done, todo, c.text.c_str(),
                    static_cast<long long>(tokens),
                    status == "done" ? ("loss " + std::to_string(res.val_loss)).c_str() : ("failed: " + error).c_str(),
                    wall, spent / done * (todo - done));
      log(buf);
    }
  }

  std::vector<std::pair<std::string, std::string>> ids;
  std::vector<double> a, b;
  for (const auto& c : cands) {
    ids.emplace_back(c.hash, c.text);
    a.push_back(*stored(c.hash, o.short_tokens));
    b.push_back(*stored(c.hash, o.long_tokens));
  }
  ProxyReport rep = agreement(ids, a, b, o.seed);
  json stored_rep = rep.to_json();
  stored_rep["short_tokens"] = o.short_tokens;
  stored_rep["long_tokens"] = o.long_tokens;
  stored_rep["config"] = cfg.source;
  stored_rep["space_key"] = proxy_key(cfg.doc);
  stored_rep["name"] = o.name;
  stored_rep["study"] = o.study;
  Stmt ins(db, "INSERT INTO proxy_reports(name, report, created_at) VALUES(?,?,?)");
  ins.bind(1, o.name).bind(2, stored_rep.dump()).bind(3, utc_now()).run();
  return rep;
}

}  // namespace flashnas
