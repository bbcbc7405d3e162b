// The guided proposer (search/guided.h) and its surrogate
// (search/surrogate.h): the GP interpolates a smooth function and knows
// where it is unsure; on the demo bench table it ranks held-out
// architectures well above chance; guided replays are deterministic per
// seed and respect the budget; a guided study with two workers, and one
// killed with -9 and resumed, gives a valid study.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include <sys/wait.h>
#include <unistd.h>

#include "common/db.h"
#include "profiler/validate.h"
#include "search/arch_features.h"
#include "search/evolution.h"
#include "search/fidelity.h"
#include "search/replay.h"
#include "study/study_store.h"
#include "search/surrogate.h"
#include "tests/search_fixture.h"

namespace flashnas {
namespace {

namespace fs = std::filesystem;
using test::run_cli;
using test::scalar;
using test::Study;

const fs::path kDemoTable = fs::path(test::source_dir()) / "results/search-bench/demo-300.csv";
// The tiny space (tests/search_fixture.h), guided, with and without rungs.
const std::string kGuided = "algorithm = \"guided\"\npool = 48\n";
const std::string kGuidedRungs = kGuided + "fidelities = [256, 768, 2304]\neta = 2\n";

// (slot, genome, origin, rung, loss) of every trained run, in slot order.
std::vector<std::string> runs_of(const std::string& db) {
  StudyStore store(db, false);
  std::vector<std::string> out;
  for (const auto& t : store.trials(store.get_study("s").id)) {
    if (!t.slot) continue;
    for (int r = 0; r <= t.rung; ++r) {
      char buf[64];
      std::snprintf(buf, sizeof buf, " rung %d %.9g", r, t.loss_at(r));
      out.push_back(std::to_string(*t.slot) + " " + t.genome + " " + t.origin + buf);
    }
  }
  return out;
}

// The tiny space made layerwise (2 to 5 layers) with width = "fit", guided
// with `search` settings.
SearchConfig layerwise_fit_config(const std::string& search) {
  std::string toml = test::tiny_config("/x.tokens", search);
  test::replace_once(toml, "kind = \"staged\"", "kind = \"layerwise\"\nlayers = [2, 5]");
  test::replace_once(toml, "width = \"gene\"", "width = \"fit\"");
  for (const char* drop : {"stages = 3\n", "blocks_per_stage = [1, 2]\n"}) toml.erase(toml.find(drop), std::strlen(drop));
  return test::parse_config(toml);
}

// Synthetic latency of a layerwise genome: 1 ms plus 0.5 ms per layer.
double synthetic_ms(const Genome& g) { return 1.0 + 0.5 * double(g.layers.size()); }

// Trial `number` of a study, done, holding `g` at width 32 (1000 parameters
// per layer, synthetic_ms on budget "call"); losses are the caller's.
TrialRow done_trial(const SearchSpace& sp, Genome g, int64_t number) {
  g.d_model = 32;
  TrialRow t;
  t.number = number;
  t.id = number + 1;
  t.slot = number;
  t.status = "done";
  t.origin = "random";
  t.genome = sp.genome_text(g);
  t.params = 1000 * int64_t(g.layers.size());
  t.predicted = json{{"call", synthetic_ms(g)}};
  t.latency_ms = synthetic_ms(g);
  return t;
}

// Prices pool members as done_trial does, refusing what `known` holds.
CandidateFn synthetic_pricer(const SearchSpace& sp, const std::set<std::string>& known) {
  return [&sp, &known](const Genome& g) -> std::optional<Candidate> {
    Genome w = g;
    EXPECT_EQ(g.d_model, 0) << "a fit-width pool member arrives without a width";
    w.d_model = 32;
    if (known.count(sp.genome_text(w))) return std::nullopt;
    return Candidate{w, 1000 * int64_t(w.layers.size()), {synthetic_ms(w)}};
  };
}

TEST(Surrogate, InterpolatesASmoothFunctionAndIsUnsureFarFromTheData) {
  // y = sin(3 x0) + x1^2 on a 7 x 7 grid in [-1, 1]^2.
  Matrix x;
  std::vector<double> y;
  for (int i = 0; i < 7; ++i) {
    for (int j = 0; j < 7; ++j) {
      const double a = -1 + i / 3.0, b = -1 + j / 3.0;
      x.push_back({a, b});
      y.push_back(std::sin(3 * a) + b * b);
    }
  }
  GaussianProcess gp;
  gp.fit(x, y, 120);
  const Matrix q = {{0.1, 0.2}, {-0.5, 0.7}, {0.77, -0.4}, {6.0, 6.0}};
  const auto p = gp.predict(q);
  ASSERT_EQ(p.mean.size(), 4u);
  for (int i = 0; i < 3; ++i) {
    const double truth = std::sin(3 * q[size_t(i)][0]) + q[size_t(i)][1] * q[size_t(i)][1];
    EXPECT_NEAR(p.mean[size_t(i)], truth, 0.1) << "query " << i;
    EXPECT_LT(p.sd[size_t(i)], 0.15) << "query " << i;
  }
  EXPECT_GT(p.sd[3], 4 * p.sd[0]) << "far from every row the model must be unsure";
  // The same data fits to the same model.
  GaussianProcess again;
  again.fit(x, y, 120);
  EXPECT_EQ(again.predict(q).mean, p.mean);
}

TEST(Surrogate, BelieverRowsShrinkTheUncertaintyWhereTheyAre) {
  Matrix x;
  std::vector<double> y;
  for (int i = 0; i <= 6; ++i) {
    x.push_back({i * 0.5});
    y.push_back(std::sin(i * 0.5));
  }
  GaussianProcess gp;
  gp.fit(x, y);
  const double before = gp.predict({{6.0}}).sd[0];
  gp.condition_on({{6.0}}, gp.predict({{6.0}}).mean);
  EXPECT_LT(gp.predict({{6.0}}).sd[0], 0.5 * before);
}

// Large studies: the rows kept are the best half and an even spread of the
// rest, in their order; a study within the limit keeps every row.
TEST(Surrogate, LargeStudiesKeepTheBestHalfAndASpreadOfTheRest) {
  std::vector<double> y;
  for (int i = 0; i < 40; ++i) y.push_back(double((i * 17) % 40));  // a permutation of 0..39
  const auto all = surrogate_rows(y, 40);
  ASSERT_EQ(all.size(), 40u);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i], i);
  const auto kept = surrogate_rows(y, 10);
  ASSERT_EQ(kept.size(), 10u);
  EXPECT_TRUE(std::is_sorted(kept.begin(), kept.end()));
  EXPECT_EQ(std::set<size_t>(kept.begin(), kept.end()).size(), 10u);
  int best = 0, low = 0, high = 0;
  for (const size_t i : kept) {
    best += y[i] < 5;  // the five lowest targets are 0..4
    low += i < 20;
    high += i >= 20;
  }
  EXPECT_EQ(best, 5) << "the best half is kept";
  EXPECT_GE(low, 2) << "the rest spreads over the whole study";
  EXPECT_GE(high, 2);
  EXPECT_EQ(surrogate_rows(y, 10), kept) << "deterministic";
}

// Hyperparameters fitted on a subset, the posterior conditioned on every row:
// the rows left out of the fit are predicted better afterwards.
TEST(Surrogate, ReconditioningOnMoreRowsSharpensThePosterior) {
  Matrix x, sub;
  std::vector<double> y, suby;
  for (int i = 0; i < 60; ++i) {
    const double a = -2 + i / 15.0;
    x.push_back({a});
    y.push_back(std::sin(2 * a));
    if (i % 6 == 0) sub.push_back({a}), suby.push_back(std::sin(2 * a));
  }
  GaussianProcess gp;
  gp.fit(sub, suby);
  auto error = [&] {
    const auto p = gp.predict(x);
    double e = 0;
    for (size_t i = 0; i < x.size(); ++i) e += std::abs(p.mean[i] - y[i]);
    return e / double(x.size());
  };
  const double before = error();
  gp.recondition(x, y);
  const double after = error();
  EXPECT_LT(after, 0.5 * before) << "before " << before << ", after " << after;
  EXPECT_LT(after, 0.05);
  EXPECT_TRUE(gp.predict(x, false).sd.empty());
  EXPECT_THROW(gp.recondition({{1.0}}, {NAN}), InputError);
}

TEST(Surrogate, BadInputIsRefused) {
  GaussianProcess gp;
  EXPECT_THROW(gp.fit({{1.0}}, {1.0}), InputError);
  EXPECT_THROW(gp.fit({{1.0}, {2.0, 3.0}}, {1.0, 2.0}), InputError);
  EXPECT_THROW(gp.fit({{1.0}, {NAN}}, {1.0, 2.0}), InputError);
  EXPECT_THROW(gp.predict({{1.0}}), Error);
}

// The demo bench table (300 architectures trained at three rungs): fitted on
// the even rows' top-rung losses, the surrogate ranks the odd rows.
TEST(Surrogate, RanksHeldOutArchitecturesOfTheDemoTable) {
  const ReplayTable t = ReplayTable::load(kDemoTable);
  Matrix xtr, xte;
  std::vector<double> ytr, yte;
  const size_t top = t.table.rungs.size() - 1;
  for (size_t i = 0; i < t.genomes.size(); ++i) {
    if (!std::isfinite(t.loss[i][top])) continue;
    auto f = arch_features(t.cfg.space, t.genomes[i], t.params[i], t.ms[i]);
    EXPECT_EQ(f.size(), arch_feature_count(t.cfg.space, t.ms[i].size()));
    (i % 2 == 0 ? xtr : xte).push_back(f);
    (i % 2 == 0 ? ytr : yte).push_back(t.loss[i][top]);
  }
  ASSERT_GT(xtr.size(), 100u);
  GaussianProcess gp;
  gp.fit(xtr, ytr);
  const double rho = spearman(gp.predict(xte).mean, yte);
  std::printf("held-out Spearman rho %.3f over %zu architectures\n", rho, yte.size());
  EXPECT_GT(rho, 0.5);
}

// A layerwise space with width = "fit" and a synthetic objective in which
// every mamba2 layer lowers the loss: after 16 trained trials, the guided
// proposals favour mamba2 beyond what the trials held.
TEST(Guided, ProposalsFollowTheSurrogateInALayerwiseFitWidthSpace) {
  const SearchConfig cfg = layerwise_fit_config(kGuided);
  const SearchSpace& sp = cfg.space;
  auto mamba = [](const Genome& g) {
    int n = 0;
    for (const auto& l : g.layers) n += l.mixer == "mamba2";
    return n;
  };
  Rng rng(4);
  std::vector<TrialRow> trials;
  double mean_share = 0;
  while (trials.size() < 16) {
    const Genome g = sp.random(rng);
    TrialRow t = done_trial(sp, g, int64_t(trials.size()));
    t.rung = 0;
    t.loss = 3.0 - 0.2 * mamba(g) + 0.01 * double(g.layers.size());
    mean_share += double(mamba(g)) / double(g.layers.size()) / 16;
    trials.push_back(t);
  }
  std::set<std::string> known;
  for (const auto& t : trials) known.insert(t.genome);
  const CandidateFn price = synthetic_pricer(sp, known);
  double share = 0;
  for (int i = 0; i < 6; ++i) {
    Rng r(100 + uint64_t(i));
    const auto p = propose(cfg, 16, 0, trials, r, &price);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->origin, "guided");
    EXPECT_EQ(p->genome.d_model, 0);
    share += double(mamba(p->genome)) / double(p->genome.layers.size()) / 6;
  }
  std::printf("mamba2 share: proposals %.2f, trials %.2f\n", share, mean_share);
  EXPECT_GT(share, mean_share + 0.25) << "proposals' mamba2 share " << share << ", the trials' " << mean_share;
}

// Where the rungs disagree (short training favours small models, the top
// rung large ones), predict_at decides which the proposals follow: "first"
// proposes smaller models than "top".
TEST(Guided, PredictAtTopFollowsTheTopRungWhereTheRungsDisagree) {
  const auto layers_proposed = [&](const std::string& predict_at) {
    const SearchConfig cfg = layerwise_fit_config(kGuidedRungs + "predict_at = \"" + predict_at + "\"\n");
    const SearchSpace& sp = cfg.space;
    const Rungs rungs(cfg);
    Rng rng(4);
    std::vector<TrialRow> trials;
    std::set<std::string> known;
    while (trials.size() < 24) {
      const Genome g = sp.random(rng);
      TrialRow row = done_trial(sp, g, int64_t(trials.size()));
      if (!known.insert(row.genome).second) continue;
      const double n = double(g.layers.size());
      // Every trial at rung 0 (small is better), half of them up to the top (large is better).
      const int top = trials.size() % 2 ? rungs.top() : 0;
      for (int r = 0; r <= top; ++r) {
        RungRow rr;
        rr.rung = r;
        rr.tokens = rungs.tokens(r);
        rr.status = "done";
        rr.loss = r == 0 ? 3.0 + 0.1 * n : 3.0 - 0.3 * double(r) - 0.1 * n;
        row.rungs.push_back(rr);
      }
      row.rung = top;
      row.loss = row.rungs.back().loss;
      trials.push_back(row);
    }
    const CandidateFn price = synthetic_pricer(sp, known);
    double mean = 0;
    for (int i = 0; i < 6; ++i) {
      Rng r(100 + uint64_t(i));
      const auto p = propose(cfg, 24, 0, trials, r, &price);
      EXPECT_EQ(p ? p->origin : "", "guided");
      if (p) mean += double(p->genome.layers.size()) / 6;
    }
    return mean;
  };
  const double first = layers_proposed("first"), top = layers_proposed("top");
  std::printf("layers proposed: predict_at first %.2f, top %.2f\n", first, top);
  EXPECT_LT(first, 3.0) << "rung 0 favours small models";
  EXPECT_GT(top, 4.0) << "the top rung favours large ones";
}

TEST(Guided, ReplaysAreDeterministicPerSeedAndStayInTheBudget) {
  const ReplayTable t = ReplayTable::load(kDemoTable);
  for (const char* algo : {"guided", "guided+asha"}) {
    ReplayOptions o;
    o.algorithm = algo;
    o.seed = 5;
    o.budget_tokens = 60 * t.table.rungs[0];
    const ReplayRun a = replay(t, o), b = replay(t, o);
    EXPECT_EQ(a.rows, b.rows) << algo;
    EXPECT_EQ(a.events, b.events) << algo;
    EXPECT_EQ(a.final_best, b.final_best) << algo;
    EXPECT_LE(a.spent_tokens, o.budget_tokens) << algo;
    EXPECT_EQ(std::set<size_t>(a.rows.begin(), a.rows.end()).size(), a.rows.size()) << algo << ": a row twice";
    o.seed = 6;
    EXPECT_NE(replay(t, o).rows, a.rows) << algo;
  }
}

TEST(Guided, BadSettingsNameTheField) {
  test::TempDir d;
  auto bad = [&](const std::string& extra, const std::string& want) {
    try {
      test::parse_config(test::tiny_config((d.path() / "x.tokens").string(), extra));
      ADD_FAILURE() << extra << ": accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  };
  bad("algorithm = \"bayes\"\n", "field \"search.algorithm\": must be \"guided\"");
  bad(kGuided + "kappa = -1\n", "field \"search.kappa\": must be a number >= 0");
  bad("algorithm = \"guided\"\npool = 0\n", "search.pool");
  bad(kGuided + "predict_at = \"last\"\n", "field \"search.predict_at\": must be \"first\"");
  // Guided settings stay valid when another algorithm is chosen (e.g. --algorithm random on the demo config).
  EXPECT_NO_THROW(test::parse_config(test::tiny_config((d.path() / "x.tokens").string(), "pool = 64\nkappa = 2\n")));
}

// A one-fidelity guided study: after the initial population the candidates
// come from the surrogate, and every one is new.
TEST(Guided, AStudyProposesFromTheSurrogateAfterThePopulation) {
  Study st(kGuided);
  const auto r = run_cli(st.search_args());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM trials WHERE slot IS NOT NULL AND reused_from IS NULL"), 8);
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM trials WHERE slot < 4 AND origin = 'random'"), 4);
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM trials WHERE slot >= 4 AND origin = 'guided'"), 4);
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(DISTINCT hash) FROM trials WHERE slot IS NOT NULL"), 8) << "nothing proposed twice";
}

TEST(Guided, TwoWorkersShareARungedGuidedStudy) {
  Study st(kGuidedRungs);
  test::expect_two_worker_rung_study(st);
  EXPECT_GE(scalar(st.db, "SELECT COUNT(*) FROM trials WHERE origin = 'guided'"), 1);
}

// Killed with SIGKILL at exact points (search/runner.cpp's test-only fault
// hook), in a guided proposal's study with rungs, and resumed: the same
// study as an uninterrupted one, proposal for proposal and loss for loss.
TEST(Guided, KilledAndResumedEqualsTheUninterruptedStudy) {
  Study ref(kGuidedRungs), st(kGuidedRungs);
  ASSERT_EQ(run_cli(ref.search_args()).exit_code, 0);
  std::vector<std::string> args = {test::flashnas_bin()};
  for (const auto& a : st.search_args()) args.push_back(a);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (const char* f : {"kill-result:5", "kill-train-step:3", "kill-claim:2", "kill-in-promotion:2"}) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      freopen("/dev/null", "w", stdout);
      freopen("/dev/null", "w", stderr);
      setenv("FLASHNAS_FAULT", f, 1);
      execv(argv[0], argv.data());
      _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << f << ": not killed mid-study";
  }
  EXPECT_GE(scalar(st.db, "SELECT COUNT(*) FROM trials WHERE origin = 'guided'"), 1) << "killed after guided proposals";
  const auto r = run_cli(st.search_args());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(runs_of(st.db), runs_of(ref.db));
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM trial_rungs WHERE status != 'done'"), 0);
}

}  // namespace
}  // namespace flashnas
