#include "search/baselines.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <set>

#include "common/error.h"
#include "search/pricer.h"
#include "supernet/accounting.h"

namespace flashnas {
namespace {

struct Sized {
  int64_t width = 0;
  int n = 0;
  double ms = 0;
  int64_t params = 0;
  double aspect = 0;
  ArchSpec arch;
};

// How far an aspect lies outside the band, in log units (0 inside).
double band_distance(double aspect, const SizingOptions& o) {
  if (aspect < o.aspect_min) return std::log(o.aspect_min / aspect);
  if (aspect > o.aspect_max) return std::log(aspect / o.aspect_max);
  return 0;
}

std::string describe(const std::string& family, const ArchSpec& a, int n) {
  std::string unit;
  if (family == "nemotron-flash") {
    int b2 = 0;
    for (size_t i = 0; i + 3 < a.layers.size(); i += 4) b2 += a.layers[i].type == "attn";
    return "d=" + std::to_string(a.d_model) + " " + std::to_string(n) + " blocks (" + std::to_string(n - b2) +
           "x[deltanet ffn mamba2 ffn] " + std::to_string(b2) + "x[attn ffn mamba2 ffn])";
  }
  const std::string m = a.layers.front().type;
  const bool ffn = a.layers.size() > 1 && a.layers[1].type == "ffn";
  return "d=" + std::to_string(a.d_model) + " " + std::to_string(n) + "x[" + m + (ffn ? " ffn" : "") + "]";
}

// A family's blocks as StageGenes (empty when the space lacks the ratio or FFN count).
std::vector<StageGene> family_units(const SearchSpace& space, const std::string& family, int n, bool ffn) {
  auto ratio = [&](int a, int b) {
    for (size_t i = 0; i < space.ratios.size(); ++i) {
      if (space.ratios[i].a == a && space.ratios[i].b == b) return int(i);
    }
    return -1;
  };
  const int f = ffn ? 1 : 0;
  if (std::find(space.ffn_choices.begin(), space.ffn_choices.end(), f) == space.ffn_choices.end()) return {};
  std::vector<StageGene> out;
  if (family == "nemotron-flash") {
    const int r = ratio(1, 1);
    if (r < 0) return {};
    const int b2 = n / 3;
    for (int i = 0; i < n; ++i) {
      const bool attn = i % 2 == 1 && i < 2 * b2;
      out.push_back({attn ? "attn" : "deltanet", "mamba2", r, f, 1});
    }
    return out;
  }
  const int r = ratio(0, 1);
  if (r < 0) return {};
  const std::string m = family.rfind("llama", 0) == 0 ? "attn" : family.substr(0, family.size() - 5);
  for (int i = 0; i < n; ++i) out.push_back({m, m, r, f, 1});
  return out;
}

}  // namespace

std::optional<Genome> genome_of(const SearchSpace& space, const std::vector<StageGene>& units, int64_t d_model) {
  if (units.empty()) return std::nullopt;
  Genome g;
  g.d_model = space.width_mode == SearchSpace::Width::Gene ? d_model : 0;
  if (space.kind == SearchSpace::Kind::Layerwise) {
    for (const auto& u : units) {
      const Ratio r = space.ratios.at(size_t(u.ratio));
      for (int k = 0; k < r.a; ++k) g.layers.push_back({u.m1, u.ffn});
      for (int k = 0; k < r.b; ++k) g.layers.push_back({u.m2, u.ffn});
    }
    if (int(g.layers.size()) < space.min_layers || int(g.layers.size()) > space.max_layers) return std::nullopt;
  } else {
    // Runs of equal blocks, each split into k stages (ceil(c/max) <= k <= floor(c/min)), k summing to `stages`.
    std::vector<std::pair<StageGene, int>> runs;
    for (const auto& u : units) {
      if (!runs.empty() && runs.back().first == u) {
        ++runs.back().second;
      } else {
        runs.push_back({u, 1});
      }
    }
    const int S = space.stages;
    // reach[i][s]: the first i runs can fill exactly s stages; choice[i][s]: the k of run i-1.
    std::vector<std::vector<int>> choice(runs.size() + 1, std::vector<int>(size_t(S) + 1, -1));
    std::vector<std::vector<bool>> reach(runs.size() + 1, std::vector<bool>(size_t(S) + 1, false));
    reach[0][0] = true;
    for (size_t i = 0; i < runs.size(); ++i) {
      const int c = runs[i].second;
      const int kmin = (c + space.max_blocks - 1) / space.max_blocks, kmax = c / space.min_blocks;
      for (int s = 0; s <= S; ++s) {
        if (!reach[i][size_t(s)]) continue;
        for (int k = std::max(1, kmin); k <= kmax && s + k <= S; ++k) {
          if (!reach[i + 1][size_t(s + k)]) {
            reach[i + 1][size_t(s + k)] = true;
            choice[i + 1][size_t(s + k)] = k;
          }
        }
      }
    }
    if (!reach[runs.size()][size_t(S)]) return std::nullopt;
    std::vector<int> ks(runs.size());
    for (size_t i = runs.size(), s = size_t(S); i > 0; --i) {
      ks[i - 1] = choice[i][s];
      s -= size_t(ks[i - 1]);
    }
    for (size_t i = 0; i < runs.size(); ++i) {
      const int c = runs[i].second, k = ks[i];
      for (int j = 0; j < k; ++j) {
        StageGene st = runs[i].first;
        st.blocks = c / k + (j < c % k ? 1 : 0);  // as even as can be, larger stages first
        g.stages.push_back(st);
      }
    }
  }
  Genome check = g;
  if (!space.repair(check) || !(check == g)) return std::nullopt;  // the operator cap would cut it
  return space.parse_genome(space.genome_text(g), "a baseline's genome");  // canonical form
}

std::vector<std::string> baseline_seeds(const SearchSpace& space, const std::vector<Budget>& budgets,
                                        const std::function<double(const ArchSpec&, size_t)>& price,
                                        std::vector<std::string>* outside) {
  std::vector<std::string> out;
  for (size_t b = 0; b < budgets.size(); ++b) {
    std::vector<Contender> cs;
    try {
      auto meets_all = [&](const ArchSpec& a) {
        std::vector<double> ms;
        for (size_t o = 0; o < budgets.size(); ++o) ms.push_back(price(a, o));
        return over_budget(budgets, ms).empty();
      };
      cs = size_baselines(space, budgets[b], [&](const ArchSpec& a) { return price(a, b); }, SizingOptions{}, nullptr,
                          meets_all);
    } catch (const InputError&) {
      continue;  // no baseline meets this budget: nothing to seed
    }
    for (const auto& c : cs) {
      const auto g = genome_of(space, c.units, c.arch.d_model);
      if (!g || space.decode(*g, c.arch.d_model).hash() != c.arch.hash()) {
        if (outside) {
          std::string why = outside_space(space, c.arch);
          if (why.empty()) why = "its blocks do not split into the space's stages";
          outside->push_back(budgets[b].name + ": " + c.label + " " + c.description + " (" + why + ")");
        }
        continue;
      }
      const std::string text = space.genome_text(*g);
      if (std::find(out.begin(), out.end(), text) == out.end()) out.push_back(text);
    }
  }
  return out;
}

int mixer_layers(const ArchSpec& a) {
  int n = 0;
  for (const auto& l : a.layers) n += l.type != "ffn";
  return n;
}

std::string outside_space(const SearchSpace& space, const ArchSpec& a) {
  std::vector<std::string> why;
  if (int(a.layers.size()) > space.max_operators) {
    why.push_back(std::to_string(a.layers.size()) + " operators > max_operators " + std::to_string(space.max_operators));
  }
  if (space.kind == SearchSpace::Kind::Staged) {
    int per_block = 0;
    for (const auto& r : space.ratios) per_block = std::max(per_block, r.a + r.b);
    const int most = space.stages * space.max_blocks * per_block;
    if (mixer_layers(a) > most) {
      why.push_back(std::to_string(mixer_layers(a)) + " mixer layers > the " + std::to_string(most) +
                    " its stages and blocks hold");
    }
  } else if (mixer_layers(a) > space.max_layers) {
    why.push_back(std::to_string(mixer_layers(a)) + " mixer layers > max_layers " + std::to_string(space.max_layers));
  }
  if (std::find(space.widths.begin(), space.widths.end(), a.d_model) == space.widths.end()) {
    why.push_back("width " + std::to_string(a.d_model) + " is not among its widths");
  }
  std::set<std::string> missing;
  for (const auto& l : a.layers) {
    if (l.type != "ffn" && std::find(space.mixers.begin(), space.mixers.end(), l.type) == space.mixers.end()) {
      missing.insert(l.type);
    }
  }
  for (const auto& m : missing) why.push_back("mixer " + m + " is not in it");
  std::string out;
  for (const auto& w : why) out += (out.empty() ? "" : "; ") + w;
  return out;
}

std::vector<std::string> family_layers(const std::string& family, int n, bool ffn) {
  if (n < 1) throw Error("family_layers: n must be >= 1");
  std::vector<std::string> out;
  if (family == "nemotron-flash") {
    const int b2 = n / 3;
    for (int i = 0; i < n; ++i) {
      const bool attn = i % 2 == 1 && i < 2 * b2;
      for (const char* t : {attn ? "attn" : "deltanet", "ffn", "mamba2", "ffn"}) out.push_back(t);
    }
    return out;
  }
  std::string mixer = family;
  if (family.rfind("llama", 0) == 0) {
    mixer = "attn";
  } else if (family.size() > 5 && family.compare(family.size() - 5, 5, "-only") == 0) {
    mixer = family.substr(0, family.size() - 5);
  } else {
    throw Error("family_layers: unknown family \"" + family + "\"");
  }
  for (int i = 0; i < n; ++i) {
    out.push_back(mixer);
    if (ffn) out.push_back("ffn");
  }
  return out;
}

std::vector<Contender> size_baselines(const SearchSpace& space, const Budget& budget, const PriceFn& price,
                                      const SizingOptions& opts, std::vector<std::string>* skipped,
                                      const MeetsOthersFn& meets_others) {
  if (!(opts.near_fraction > 0) || !(opts.near_fraction <= 1)) {
    throw InputError("--near: must be in (0, 1], got " + std::to_string(opts.near_fraction));
  }
  if (!(opts.aspect_min > 0) || !(opts.aspect_max >= opts.aspect_min)) {
    throw InputError("--aspect: the band must be 0 < min <= max, got " + std::to_string(opts.aspect_min) + ".." +
                     std::to_string(opts.aspect_max));
  }
  const std::set<std::string> mixers(space.mixers.begin(), space.mixers.end());
  const bool ffn = std::any_of(space.ffn_choices.begin(), space.ffn_choices.end(), [](int f) { return f > 0; });
  auto skip = [&](const std::string& line) {
    if (skipped) skipped->push_back(line);
  };
  // Families and the mixers they need.
  std::vector<std::pair<std::string, std::vector<std::string>>> families;
  families.push_back({"llama", {"attn"}});
  for (const auto& m : space.mixers) {
    if (m != "attn") families.push_back({m + "-only", {m}});
  }
  families.push_back({"nemotron-flash", {"deltanet", "mamba2", "attn"}});

  std::vector<Contender> out;
  std::set<std::string> hashes;
  double cheapest = INFINITY;
  std::string cheapest_text;
  auto add = [&](const std::string& label, const std::string& family, const Sized& s, const std::string& rule) {
    if (!hashes.insert(s.arch.hash()).second) {
      skip(budget.name + ": " + label + " is the same architecture as an earlier baseline (" + describe(family, s.arch, s.n) + ")");
      return;
    }
    Contender c;
    c.label = label;
    c.kind = "baseline";
    c.arch = s.arch;
    c.description = describe(family, s.arch, s.n);
    c.arch.name = label + ": " + c.description;
    c.predicted_ms = s.ms;
    c.params = s.params;
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s; aspect %.0f (d_model per mixer layer)", rule.c_str(), s.aspect);
    c.note = buf;
    c.units = family_units(space, family, s.n, ffn);
    out.push_back(std::move(c));
  };
  for (const auto& [family, needs] : families) {
    std::string missing;
    for (const auto& m : needs) {
      if (!mixers.count(m)) missing += (missing.empty() ? "" : ", ") + m;
    }
    if (!missing.empty()) {
      skip(budget.name + ": no " + family + " baseline: the space has no " + missing + " (the table cannot price it)");
      continue;
    }
    if ((family == "llama" || family == "nemotron-flash") && !ffn) {
      skip(budget.name + ": no " + family + " baseline: the space has no FFNs (ffn_per_mixer holds only 0)");
      continue;
    }
    std::vector<Sized> fits;
    for (const int64_t w : space.widths) {
      for (int n = 1; n <= opts.max_units; ++n) {
        Sized s;
        s.width = w;
        s.n = n;
        s.arch = space.build(family_layers(family, n, ffn), w, family);
        s.ms = price(s.arch);
        if (s.ms < cheapest) {
          cheapest = s.ms;
          cheapest_text = family + " " + describe(family, s.arch, n);
        }
        if (!budget.met(s.ms) || (meets_others && !meets_others(s.arch))) break;  // more blocks: slower still
        s.params = account(s.arch, 0, 4).params_total;
        s.aspect = double(w) / double(mixer_layers(s.arch));
        fits.push_back(std::move(s));
      }
    }
    if (fits.empty()) {
      skip(budget.name + ": no " + family + " baseline: even one block at the narrowest width breaks the budget" +
           (meets_others ? " or another of the study's budgets" : ""));
      continue;
    }
    // Only the sizes that use the budget.
    double slowest = 0;
    for (const auto& f : fits) slowest = std::max(slowest, f.ms);
    std::vector<const Sized*> kept;
    for (const auto& f : fits) {
      if (f.ms >= opts.near_fraction * slowest) kept.push_back(&f);
    }
    // The standard size: the aspect nearest the band; inside it the slowest.
    const Sized* std_fit = nullptr;
    for (const Sized* s : kept) {
      if (!std_fit) {
        std_fit = s;
        continue;
      }
      const double ds = band_distance(s->aspect, opts), db = band_distance(std_fit->aspect, opts);
      if (ds < db || (ds == db && (s->ms > std_fit->ms || (s->ms == std_fit->ms && s->params > std_fit->params)))) std_fit = s;
    }
    char rule[160];
    std::snprintf(rule, sizeof rule, "%s within %.0f%% of the family's slowest size in the budget",
                  band_distance(std_fit->aspect, opts) == 0 ? "a standard aspect" : "the aspect nearest the standard band",
                  100 * (1 - opts.near_fraction));
    add(family, family, *std_fit, rule);
    if (family != "llama") continue;
    // Deep-thin and wide-shallow: the extreme aspects among the kept sizes
    // (ties: the slower).
    auto extreme = [&](bool smallest) {
      const Sized* best = nullptr;
      for (const Sized* s : kept) {
        if (!best || (smallest ? s->aspect < best->aspect : s->aspect > best->aspect) ||
            (s->aspect == best->aspect && s->ms > best->ms)) {
          best = s;
        }
      }
      return best;
    };
    add("llama-deep-thin", family, *extreme(true), "the smallest aspect (narrow and deep) that uses the budget");
    add("llama-wide-shallow", family, *extreme(false), "the largest aspect (wide and shallow) that uses the budget");
  }
  if (out.empty() && !std::isfinite(cheapest)) {
    throw InputError("budget \"" + budget.name + "\": no baseline family can be built from the space in " + space.source +
                     " (it needs attn, or a mixer other than attn)");
  }
  if (out.empty()) {
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "budget \"%s\" (%s): no baseline meets it; the cheapest one, %s, is predicted at %.3f ms against a "
                  "limit of %.3f ms: raise the budget or add narrower widths to the space",
                  budget.name.c_str(), budget.workload.str().c_str(), cheapest_text.c_str(), cheapest, budget.limit_ms());
    throw InputError(buf);
  }
  return out;
}

}  // namespace flashnas
