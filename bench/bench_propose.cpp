// The guided proposer's cost as a study grows: one proposal (surrogate fit,
// pool priced from the real latency table, acquisition) at N finished trials,
// for several N, timed in the same run so the rows compare.
//
// The trials are drawn from the config's space and priced on the table like a
// study's (only those meeting every budget); their losses are synthetic (a
// smooth function of the parameter count plus fixed-seed noise, lower at
// higher rungs) because the proposer's cost does not depend on the values.
// With rungs, every trial has rung 0, every third rung 1, every ninth rung 2
// (asynchronous halving with eta 3 leaves about that).
//
// Each row: N, the surrogate's rows (runs), the median and every sample of
// the proposal's wall time in ms, and the surrogate's parts timed alone at
// that size (hyperparameter fit, posterior, predicting the members and a
// pool). --json FILE writes the rows with commit,
// machine and parameters.
//
//   bench_propose --config configs/demo.toml --lut out/demo/flashnas.db [--trials 250,500,1000,2000] [--repeat 3] [--json FILE]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "common/device.h"
#include "common/error.h"
#include "common/json_io.h"
#include "profiler/lut.h"
#include "search/evolution.h"
#include "search/fidelity.h"
#include "search/guided.h"
#include "search/pricer.h"
#include "search/surrogate.h"
#include "supernet/accounting.h"

using namespace flashnas;
using clock_type = std::chrono::steady_clock;

namespace {

std::vector<int64_t> parse_list(const std::string& s, const char* flag) {
  std::vector<int64_t> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      size_t used = 0;
      const long long v = std::stoll(item, &used);
      if (used != item.size() || v < 4) throw std::invalid_argument(item);
      out.push_back(v);
    } catch (const std::exception&) {
      throw InputError(std::string(flag) + " \"" + s + "\": must be a comma-separated list of integers >= 4");
    }
  }
  if (out.empty()) throw InputError(std::string(flag) + ": empty");
  return out;
}

double normal(Rng& rng) {  // Box-Muller
  const double u = std::max(rng.uniform(), 1e-300), v = rng.uniform();
  return std::sqrt(-2 * std::log(u)) * std::cos(2 * M_PI * v);
}

// `n` finished trials drawn from the space, priced, with synthetic losses.
std::vector<TrialRow> make_trials(const SearchConfig& cfg, Pricer& pricer, const Rungs& rungs, int64_t n, Rng& rng) {
  std::vector<TrialRow> out;
  std::map<std::string, bool> seen;
  for (int64_t draws = 0; int64_t(out.size()) < n; ++draws) {
    if (draws > 200 * n) throw Error("bench_propose: the space yields fewer than " + std::to_string(n) + " architectures within the budgets");
    const Priced p = pricer.price(cfg.space.random(rng));
    if (!p.arch || seen[p.arch->hash()]) continue;
    seen[p.arch->hash()] = true;
    TrialRow t;
    t.number = int64_t(out.size());
    t.id = t.number + 1;
    t.slot = t.number;
    t.status = "done";
    t.origin = "random";
    t.genome = cfg.space.genome_text(p.genome);
    t.hash = p.arch->hash();
    t.d_model = p.genome.d_model;
    t.params = account(*p.arch, 0, 4).params_total;
    for (size_t i = 0; i < cfg.budgets.size(); ++i) t.predicted[cfg.budgets[i].name] = p.ms[i];
    t.latency_ms = p.ms.at(0);
    const double base = 3.5 - 0.25 * std::log10(double(t.params) / 1e5) + 0.03 * normal(rng);
    int top = 0;
    for (int r = 1; r <= rungs.top(); ++r) {
      if (t.number % int64_t(std::pow(3, r)) == 0) top = r;
    }
    for (int r = 0; r <= top; ++r) {
      RungRow rr;
      rr.rung = r;
      rr.tokens = rungs.tokens(r);
      rr.status = "done";
      rr.loss = base - 0.3 * r + 0.01 * normal(rng);
      t.rungs.push_back(rr);
    }
    t.rung = top;
    t.loss = t.rungs.back().loss;
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config, lut_db, json_out, trials_text = "250,500,1000,2000";
  int repeat = 3;
  for (int i = 1; i < argc; ++i) {
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_propose: %s needs a value\n", argv[i]);
        std::exit(2);
      }
      return argv[++i];
    };
    if (!std::strcmp(argv[i], "--config")) config = next();
    else if (!std::strcmp(argv[i], "--lut")) lut_db = next();
    else if (!std::strcmp(argv[i], "--trials")) trials_text = next();
    else if (!std::strcmp(argv[i], "--repeat")) repeat = std::atoi(next().c_str());
    else if (!std::strcmp(argv[i], "--json")) json_out = next();
    else {
      std::fprintf(stderr,
                   "usage: bench_propose --config TOML --lut DB [--trials 250,500,1000,2000] [--repeat 3] [--json FILE]\n");
      return 2;
    }
  }
  try {
    if (config.empty() || lut_db.empty()) throw InputError("--config and --lut are required");
    if (repeat < 1) throw InputError("--repeat: must be >= 1");
    const std::vector<int64_t> sizes = parse_list(trials_text, "--trials");
    SearchConfig cfg = SearchConfig::load(config);
    cfg.search.algorithm = "guided";
    const DeviceInfo dev = describe_device(torch::Device(torch::kCPU));
    LutStore store(lut_db, Access::read_only);
    const LutTable lut = LutTable::load(store, store.find_device(""), cfg.dtype, cfg.runtime);
    Pricer pricer(cfg, lut);
    const Rungs rungs(cfg);
    Rng draw(7);
    const int64_t most = *std::max_element(sizes.begin(), sizes.end());
    const std::vector<TrialRow> all = make_trials(cfg, pricer, rungs, most, draw);
    std::printf("%8s %8s %12s  %s\n", "trials", "runs", "median ms", "samples ms");
    json rows = json::array();
    for (const int64_t n : sizes) {
      const std::vector<TrialRow> trials(all.begin(), all.begin() + n);
      std::map<std::string, bool> known;
      for (const auto& t : trials) known[t.hash] = true;
      const CandidateFn candidate = [&](const Genome& g) -> std::optional<Candidate> {
        Priced p = pricer.price(g);
        if (!p.arch || known.count(p.arch->hash())) return std::nullopt;
        return Candidate{p.genome, account(*p.arch, 0, 4).params_total, p.ms};
      };
      int64_t runs = 0;
      for (const auto& t : trials) runs += int64_t(t.rungs.size());
      std::vector<double> ms;
      for (int k = 0; k < repeat; ++k) {
        Rng rng(100 + uint64_t(k));
        const auto t0 = clock_type::now();
        const auto p = propose(cfg, n, 0, trials, rng, &candidate);
        ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());
        if (!p || p->origin != "guided") throw Error("bench_propose: the proposal at " + std::to_string(n) + " trials was not guided");
      }
      // The surrogate's parts at this size, on the trials' own rows (features
      // as the proposer builds them are not needed for cost: a [runs, 16] draw).
      Matrix fx;
      std::vector<double> fy;
      Rng frng(3);
      for (int64_t i = 0; i < runs; ++i) {
        std::vector<double> row(16);
        for (auto& v : row) v = normal(frng);
        fx.push_back(row);
        fy.push_back(row[0] + 0.1 * normal(frng));
      }
      auto part = [&](auto&& f) {
        const auto t0 = clock_type::now();
        f();
        return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
      };
      GaussianProcess gp;
      const auto fit_rows = surrogate_rows(fy, kSurrogateFitRows), post_rows = surrogate_rows(fy, kSurrogatePosteriorRows);
      Matrix sx, px;
      std::vector<double> sy, py;
      for (const size_t i : fit_rows) sx.push_back(fx[i]), sy.push_back(fy[i]);
      for (const size_t i : post_rows) px.push_back(fx[i]), py.push_back(fy[i]);
      const double fit_ms = part([&] { gp.fit(sx, sy); });
      const double post_ms = part([&] { gp.recondition(px, py); });
      const double members_ms = part([&] { gp.predict(Matrix(fx.begin(), fx.begin() + n), false); });
      const double pool_ms = part([&] { gp.predict(Matrix(fx.begin(), fx.begin() + std::min<int64_t>(n, cfg.search.pool))); });
      std::vector<double> sorted = ms;
      std::sort(sorted.begin(), sorted.end());
      const double median = sorted[sorted.size() / 2];
      std::string samples;
      for (const double v : ms) samples += (samples.empty() ? "" : " ") + std::to_string(int64_t(std::lround(v)));
      std::printf("%8lld %8lld %12.1f  %-16s fit %.0f, posterior %.0f, members %.0f, pool %.0f ms\n", static_cast<long long>(n),
                  static_cast<long long>(runs), median, samples.c_str(), fit_ms, post_ms, members_ms, pool_ms);
      std::fflush(stdout);
      rows.push_back({{"trials", n}, {"runs", runs}, {"median_ms", median}, {"samples_ms", ms},
                      {"fit_rows", std::min<int64_t>(runs, int64_t(kSurrogateFitRows))},
                      {"posterior_rows", std::min<int64_t>(runs, int64_t(kSurrogatePosteriorRows))},
                      {"surrogate_parts_ms", {{"fit", fit_ms}, {"posterior", post_ms}, {"predict_members", members_ms}, {"predict_pool", pool_ms}}}});
    }
    if (!json_out.empty()) {
      std::ofstream(json_out) << json{{"commit", dev.commit}, {"machine", dev.name}, {"threads", dev.threads},
                                      {"cores", sysconf(_SC_NPROCESSORS_ONLN)}, {"config", config}, {"pool", cfg.search.pool},
                                      {"repeat", repeat}, {"rows", rows}}
                                     .dump(2)
                              << "\n";
    }
  } catch (const InputError& e) {
    std::fprintf(stderr, "bench_propose: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_propose: %s\n", e.what());
    return 1;
  }
  return 0;
}
