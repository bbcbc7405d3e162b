#include "search/config.h"

#include <set>

#include "common/error.h"
#include "common/toml_io.h"

namespace flashnas {

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
    std::vector<std::string> allowed = {"data"};
    for (const auto& [k, v] : merged.items()) {
      if (k != "optimizer") allowed.push_back(k);
    }
    for (const auto& [k, v] : t.items()) {
      if (k == "data") continue;
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
    try {
      c.recipe = TrainRecipe::from_json(merged, src + " [train]");
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
    if (s.algorithm != "evolution" && s.algorithm != "random") {
      f.fail("algorithm", "must be \"evolution\" (aging evolution) or \"random\", got \"" + s.algorithm + "\"");
    }
    s.objective = f.string("objective", s.objective);
    if (s.objective != "loss" && s.objective != "pareto") {
      f.fail("objective", "must be \"loss\" or \"pareto\", got \"" + s.objective + "\"");
    }
    s.population = int(f.positive("population", s.population));
    s.sample = int(f.positive("sample", s.sample));
    if (s.sample > s.population) f.fail("sample", "must not exceed population (" + std::to_string(s.population) + ")");
    s.offspring = int(f.positive("offspring", s.offspring));
    s.trials = int(f.positive("trials", s.trials));
    s.seed = uint64_t(f.non_negative("seed", 0));
    s.max_attempts = int(f.positive("max_attempts", s.max_attempts));
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

}  // namespace flashnas
