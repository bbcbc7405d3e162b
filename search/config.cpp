#include "search/config.h"

#include <cmath>
#include <cstdio>
#include <set>

#include "common/error.h"
#include "common/toml_io.h"

namespace flashnas {
namespace {
// The largest count a search setting may hold (trials, population, ...):
// far beyond any real study, far within an int.
constexpr int64_t kMaxCount = 1000000;

// The guided proposer's settings (read whatever the algorithm, so that a
// config stays valid with another --algorithm).
void read_guided(FieldReader& f, SearchSettings& s) {
  s.pool = int(f.integer_in("pool", 1, kMaxCount, s.pool));
  if (f.has("kappa")) {
    const json& k = f.raw("kappa");
    if (!k.is_number() || !(k.get<double>() >= 0) || !std::isfinite(k.get<double>())) {
      f.fail("kappa", "must be a number >= 0 (weight of the surrogate's uncertainty), got " + k.dump());
    }
    s.kappa = k.get<double>();
  }
  s.predict_at = f.string("predict_at", s.predict_at);
  if (s.predict_at != "first" && s.predict_at != "top") {
    f.fail("predict_at", "must be \"first\" (the surrogate ranks candidates at rung 0) or \"top\" (at the highest rung "
                         "successive halving promotes to), got \"" + s.predict_at + "\"");
  }
}

// [search] fidelities, eta, token_budget, promote, finalists: the rungs of
// successive halving (search/fidelity.h), checked against the recipe's step.
void read_rungs(FieldReader& f, SearchSettings& s, const TrainRecipe& recipe) {
  if (f.has("fidelities")) {
    const json& a = f.raw("fidelities");
    if (!a.is_array()) f.fail("fidelities", "must be an array of training tokens per rung, e.g. [32768, 131072, 524288]");
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string at = "fidelities[" + std::to_string(i) + "]";
      if (!a[i].is_number_integer() || a[i].get<int64_t>() <= 0) f.fail(at, "must be a positive number of tokens, got " + a[i].dump());
      s.fidelities.push_back(a[i].get<int64_t>());
    }
    if (s.fidelities.size() < 2) f.fail("fidelities", "give at least two rungs (or leave the field out for one-fidelity training)");
    // Rungs are trained in whole steps: they must increase as step counts.
    const int64_t per_step = recipe.tokens_per_step();
    for (size_t i = 1; i < s.fidelities.size(); ++i) {
      const int64_t a_steps = (s.fidelities[i - 1] + per_step - 1) / per_step, b_steps = (s.fidelities[i] + per_step - 1) / per_step;
      if (b_steps <= a_steps) {
        f.fail("fidelities[" + std::to_string(i) + "]",
               "rungs must increase: " + std::to_string(s.fidelities[i]) + " tokens (" + std::to_string(b_steps) +
                   " steps of " + std::to_string(per_step) + " tokens) after " + std::to_string(s.fidelities[i - 1]) +
                   " (" + std::to_string(a_steps) + " steps)");
      }
    }
  }
  if (f.has("eta")) {
    if (s.fidelities.empty()) f.fail("eta", "only applies with fidelities (the rungs of successive halving)");
    const json& e = f.raw("eta");
    if (!e.is_number() || !(e.get<double>() >= 2)) f.fail("eta", "must be a number >= 2 (promote the top 1/eta of a rung), got " + e.dump());
    s.eta = e.get<double>();
  }
  if (f.has("token_budget")) {
    if (s.fidelities.empty()) f.fail("token_budget", "only applies with fidelities; a one-rung study stops at `trials`");
    s.token_budget = f.positive("token_budget");
  }
  if (f.has("promote")) {
    if (s.fidelities.empty()) f.fail("promote", "only applies with fidelities");
    const std::string p = f.string("promote");
    if (p != "asha" && p != "all") {
      f.fail("promote", "must be \"asha\" (successive halving) or \"all\" (every candidate to every rung, for bench tables), got \"" + p + "\"");
    }
    s.promote_all = p == "all";
  }
  if (f.has("finalists")) {
    if (s.fidelities.empty()) f.fail("finalists", "only applies with fidelities (the top rung is the finalists')");
    if (s.promote_all) f.fail("finalists", "does not apply with promote = \"all\" (every candidate reaches every rung)");
    s.finalists = int(f.integer_in("finalists", 1, kMaxCount));
  }
}

}  // namespace

SearchConfig SearchConfig::load(const std::filesystem::path& path) {
  return from_json(load_toml_file(path), path.string());
}

SearchConfig SearchConfig::from_json(const json& doc, const std::string& src) {
  SearchConfig c;
  c.source = src;
  c.doc = doc;
  FieldReader top(doc, src, "");
  c.space = SearchSpace::from_json(top.raw("space"), top.has("constraints") ? top.raw("constraints") : json(), src);
  c.budgets = parse_budgets(top.has("budgets") ? top.raw("budgets") : json(), src);

  // [train]: the trainer's recipe with its defaults, plus the data file.
  {
    const json& t = top.raw("train");
    if (!t.is_object()) throw InputError(src + ": field \"train\": must be a table");
    json merged = TrainRecipe{}.to_json();
    merged["tokens"] = 0;
    std::vector<std::string> allowed = {"data", "objective", "task_eval_records", "task_eval_rungs"};
    for (const auto& [k, v] : merged.items()) {
      if (k != "optimizer") allowed.push_back(k);
    }
    for (const auto& [k, v] : t.items()) {
      if (k == "data" || k == "objective" || k == "task_eval_records" || k == "task_eval_rungs") continue;
      if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
        throw InputError(src + ": field \"train." + k + "\": unknown; allowed: " + join_comma(allowed));
      }
      if (merged[k].is_number_float() && v.is_number_integer()) merged[k] = v.get<double>();
      else merged[k] = v;
    }
    if (!t.contains("data") || !t["data"].is_string()) {
      throw InputError(src + ": field \"train.data\": the token file to train candidates on (flashnas data prepare)");
    }
    if (!t.contains("tokens")) throw InputError(src + ": field \"train.tokens\": training tokens per candidate are required");
    c.data = t["data"].get<std::string>();
    FieldReader tf(t, src, "train");
    c.objective = tf.string("objective", c.objective);
    if (c.objective != "loss" && c.objective != "completion_bpb") {
      tf.fail("objective", "must be \"loss\" (the validation loss) or \"completion_bpb\" (bits per completion byte, task data), got \"" +
                               c.objective + "\"");
    }
    c.task_eval_records = tf.non_negative("task_eval_records", c.task_eval_records);
    c.task_eval_rungs = tf.string("task_eval_rungs", c.task_eval_rungs);
    if (c.task_eval_rungs != "top" && c.task_eval_rungs != "all") {
      tf.fail("task_eval_rungs", "must be \"top\" (task metrics at the top rung only) or \"all\" (at every rung), got \"" +
                                     c.task_eval_rungs + "\"");
    }
    try {
      c.recipe = TrainRecipe::from_json(merged, src, "train");
    } catch (const json::exception& e) {
      throw InputError(src + ": [train]: wrong value type: " + std::string(e.what()));
    }
  }

  // [search]
  {
    static const json empty = json::object();
    FieldReader f(top.has("search") ? top.raw("search") : empty, src, "search");
    auto& s = c.search;
    s.algorithm = f.string("algorithm", s.algorithm);
    if (s.algorithm != "evolution" && s.algorithm != "random" && s.algorithm != "guided") {
      f.fail("algorithm", "must be \"guided\" (surrogate-guided), \"evolution\" (aging evolution) or \"random\", got \"" +
                              s.algorithm + "\"");
    }
    s.objective = f.string("objective", s.objective);
    if (s.objective != "loss" && s.objective != "pareto") {
      f.fail("objective", "must be \"loss\" or \"pareto\", got \"" + s.objective + "\"");
    }
    if (f.has("population")) s.population = int(f.integer_in("population", 1, kMaxCount));
    if (f.has("sample")) s.sample = int(f.integer_in("sample", 1, kMaxCount));
    if (f.has("offspring")) s.offspring = int(f.integer_in("offspring", 1, kMaxCount));
    s.trials = int(f.integer_in("trials", 1, kMaxCount, s.trials));
    s.seed = uint64_t(f.non_negative("seed", 0));
    s.max_attempts = int(f.integer_in("max_attempts", 1, kMaxCount, s.max_attempts));
    read_guided(f, s);
    read_rungs(f, s, c.recipe);
    if (!s.fidelities.empty() && s.token_budget == 0) s.token_budget = int64_t(s.trials) * c.recipe.steps() * c.recipe.tokens_per_step();
    // P, S and K left out follow the budget (see SearchSettings); what was
    // derived is written into the stored config, so a study records it.
    json& resolved = c.doc["search"];
    if (s.population == 0) {
      s.population = default_population(s.fidelities.empty() ? s.trials : s.token_budget / s.fidelities.back());
      resolved["population"] = s.population;
    }
    if (s.sample == 0) {
      s.sample = std::max(2, int(std::lround(s.population / 3.0)));
      s.sample = std::min(s.sample, s.population);
      resolved["sample"] = s.sample;
    }
    if (s.sample > s.population) {
      f.fail("sample", "must not exceed population (" + std::to_string(s.population) +
                           (f.has("population") ? ")" : ", derived from the budget; set search.population to change it)"));
    }
    if (s.offspring == 0) {
      s.offspring = std::max(2, int(std::lround(s.population / 2.0)));
      resolved["offspring"] = s.offspring;
    }
    s.seed_baselines = f.boolean("seed_baselines", false);
    if (f.has("init")) {
      const json& a = f.raw("init");
      if (!a.is_array()) f.fail("init", "must be an array of genome strings");
      for (size_t i = 0; i < a.size(); ++i) {
        if (!a[i].is_string()) f.fail("init", "must hold genome strings, got " + a[i].dump());
        c.space.parse_genome(a[i].get<std::string>(), src + ": field \"search.init[" + std::to_string(i) + "]\"");
        s.init.push_back(a[i].get<std::string>());
      }
    }
    f.finish();
  }
  if (!c.search.fidelities.empty()) {
    // Rungs continue one run (search/fidelity.h): the wsd schedule, with a
    // warmup fixed by the first rung.
    const json& t = doc.at("train");
    if (t.contains("schedule") && t["schedule"] != "wsd") {
      throw InputError(src + ": field \"train.schedule\": multi-fidelity training (search.fidelities) continues each "
                       "run from rung to rung, which needs \"wsd\" (warmup-stable-decay), got " + t["schedule"].dump());
    }
    c.recipe.schedule = "wsd";
    if (c.recipe.warmup_tokens == 0) {
      TrainRecipe first = c.recipe;
      first.tokens = c.search.fidelities.front();
      c.recipe.warmup_tokens = first.warmup_steps() * first.tokens_per_step();
    }
    for (size_t i = 0; i < c.search.fidelities.size(); ++i) {
      TrainRecipe r = c.recipe;
      r.tokens = c.search.fidelities[i];
      try {
        r.validate();
      } catch (const InputError& e) {
        throw InputError(src + ": field \"search.fidelities[" + std::to_string(i) + "]\": " + e.what());
      }
    }
  }
  {
    static const json empty = json::object();
    FieldReader f(top.has("latency") ? top.raw("latency") : empty, src, "latency");
    c.dtype = f.string("dtype", "float32");
    c.runtime = f.string("runtime", "eager");
    if (c.runtime != "eager" && c.runtime != "cudagraph") f.fail("runtime", "must be \"eager\" or \"cudagraph\"");
    f.finish();
  }
  top.finish();
  return c;
}

std::string SearchConfig::describe() const {
  char buf[256];
  if (search.algorithm == "guided") {
    std::snprintf(buf, sizeof buf, "guided %s, %d trials, initial population %d, pool %d, kappa %g%s\n", search.objective.c_str(),
                  search.trials, search.population, search.pool, search.kappa,
                  search.predict_at == "top" ? ", predicted at the top rung" : "");
  } else {
    std::snprintf(buf, sizeof buf, "%s %s, %d trials, population %d, sample %d, %d offspring/cycle\n",
                  search.algorithm.c_str(), search.objective.c_str(), search.trials, search.population, search.sample,
                  search.offspring);
  }
  std::string s = buf;
  if (!search.fidelities.empty()) {
    std::string rungs;
    for (const int64_t t : search.fidelities) rungs += (rungs.empty() ? "" : ", ") + std::to_string(t);
    char how[96];
    if (search.promote_all) std::snprintf(how, sizeof how, "every candidate to every rung");
    else if (search.finalists > 0) std::snprintf(how, sizeof how, "promote the top 1/%g of a rung; the top rung: the %d best", search.eta, search.finalists);
    else std::snprintf(how, sizeof how, "promote the top 1/%g of a rung", search.eta);
    std::snprintf(buf, sizeof buf, "  rungs [%s] tokens, %s, token budget %lld\n", rungs.c_str(), how,
                  static_cast<long long>(search.token_budget));
    s += buf;
  }
  for (const auto& b : budgets) s += "  budget " + b.describe() + "\n";
  return s;
}

}  // namespace flashnas
