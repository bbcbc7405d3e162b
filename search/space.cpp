#include "search/space.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>

#include "common/error.h"
#include "supernet/accounting.h"
#include "supernet/registry.h"

namespace flashnas {
namespace {

constexpr int kMaxFfn = 2;

std::vector<std::string> split_ws(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string t; in >> t;) out.push_back(t);
  return out;
}

Ratio parse_ratio(const std::string& s, const std::string& where) {
  const auto colon = s.find(':');
  Ratio r;
  try {
    if (colon == std::string::npos) throw std::invalid_argument("no colon");
    size_t n1 = 0, n2 = 0;
    r.a = std::stoi(s.substr(0, colon), &n1);
    r.b = std::stoi(s.substr(colon + 1), &n2);
    if (n1 != colon || n2 != s.size() - colon - 1) throw std::invalid_argument("trailing");
  } catch (const std::exception&) {
    throw InputError(where + ": hybrid ratio must look like \"1:2\", got \"" + s + "\"");
  }
  if (r.a < 0 || r.b < 1 || r.a > 8 || r.b > 8) {
    throw InputError(where + ": hybrid ratio a:b needs 0 <= a <= 8 and 1 <= b <= 8, got \"" + s + "\"");
  }
  return r;
}

}  // namespace

json eval_template(const json& v, int64_t d_model, const std::string& field) {
  if (!v.is_string()) return v;
  const std::string s = v.get<std::string>();
  // Tokens: operands (integers or d_model) separated by '*' or '/'.
  std::vector<std::string> toks;
  std::string cur;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    if (c == '*' || c == '/') {
      toks.push_back(cur);
      toks.emplace_back(1, c);
      cur.clear();
    } else {
      cur += c;
    }
  }
  toks.push_back(cur);
  auto operand = [&](const std::string& t) -> int64_t {
    if (t == "d_model") return d_model;
    if (!t.empty() && std::all_of(t.begin(), t.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
      try {
        return std::stoll(t);
      } catch (const std::out_of_range&) {
        throw InputError(field + ": \"" + s + "\": " + t + " is out of range");
      }
    }
    throw InputError(field + ": \"" + s + "\" is not an expression of integers and d_model joined by * and /");
  };
  if (toks.size() % 2 == 0) throw InputError(field + ": \"" + s + "\" ends with an operator");
  int64_t acc = operand(toks[0]);
  for (size_t i = 1; i < toks.size(); i += 2) {
    const int64_t x = operand(toks[i + 1]);
    if (toks[i] == "*") {
      acc *= x;
    } else {
      if (x == 0 || acc % x != 0) {
        throw InputError(field + ": \"" + s + "\" does not divide exactly at d_model = " + std::to_string(d_model));
      }
      acc /= x;
    }
  }
  return acc;
}

SearchSpace SearchSpace::from_json(const json& space, const json& constraints, const std::string& src) {
  SearchSpace s;
  s.source = src;
  FieldReader f(space, src, "space");
  const std::string kind = f.string("kind", "staged");
  if (kind == "staged") s.kind = Kind::Staged;
  else if (kind == "layerwise") s.kind = Kind::Layerwise;
  else f.fail("kind", "must be \"staged\" or \"layerwise\", got \"" + kind + "\"");
  const std::string wm = f.string("width", s.kind == Kind::Staged ? "fit" : "gene");
  if (wm == "fit") s.width_mode = Width::Fit;
  else if (wm == "gene") s.width_mode = Width::Gene;
  else f.fail("width", "must be \"fit\" (largest width within the budgets) or \"gene\", got \"" + wm + "\"");

  auto int_list = [&](const std::string& key, std::optional<std::vector<int64_t>> def) {
    if (!f.has(key)) {
      if (!def) f.fail(key, "is required");
      return *def;
    }
    const json& a = f.raw(key);
    if (!a.is_array() || a.empty()) f.fail(key, "must be a non-empty array of integers");
    std::vector<int64_t> out;
    for (const auto& x : a) {
      if (!x.is_number_integer()) f.fail(key, "must hold integers, got " + x.dump());
      out.push_back(x.get<int64_t>());
    }
    return out;
  };
  s.widths = int_list("widths", std::nullopt);
  std::sort(s.widths.begin(), s.widths.end());
  s.widths.erase(std::unique(s.widths.begin(), s.widths.end()), s.widths.end());
  for (int64_t w : s.widths) {
    if (w <= 0) f.fail("widths", "must be positive, got " + std::to_string(w));
  }
  {
    const json& m = f.raw("mixers");
    if (!m.is_array() || m.empty()) f.fail("mixers", "must be a non-empty array of operator types");
    for (const auto& x : m) {
      if (!x.is_string()) f.fail("mixers", "must hold operator type names, got " + x.dump());
      const std::string name = x.get<std::string>();
      if (name == "ffn") f.fail("mixers", "\"ffn\" is not a mixer; FFNs come from ffn_per_mixer");
      find_op_kind(name, src + ": field \"space.mixers\"");
      if (std::find(s.mixers.begin(), s.mixers.end(), name) != s.mixers.end()) f.fail("mixers", "lists \"" + name + "\" twice");
      s.mixers.push_back(name);
    }
  }
  for (int64_t x : int_list("ffn_per_mixer", std::vector<int64_t>{0, 1, 2})) {
    if (x < 0 || x > kMaxFfn) f.fail("ffn_per_mixer", "values must be 0, 1 or 2, got " + std::to_string(x));
    if (std::find(s.ffn_choices.begin(), s.ffn_choices.end(), int(x)) == s.ffn_choices.end()) s.ffn_choices.push_back(int(x));
  }
  std::sort(s.ffn_choices.begin(), s.ffn_choices.end());
  s.max_operators = static_cast<int>(f.integer_in("max_operators", 1, 100000, 30));
  if (s.kind == Kind::Staged) {
    s.stages = static_cast<int>(f.integer_in("stages", 1, 100000, 3));
    std::vector<std::string> rs = {"0:1", "1:1", "1:2", "1:3"};
    if (f.has("ratios")) {
      const json& a = f.raw("ratios");
      if (!a.is_array() || a.empty()) f.fail("ratios", "must be a non-empty array like [\"0:1\", \"1:2\"]");
      rs.clear();
      for (const auto& x : a) {
        if (!x.is_string()) f.fail("ratios", "must hold strings like \"1:2\", got " + x.dump());
        rs.push_back(x.get<std::string>());
      }
    }
    for (const auto& r : rs) s.ratios.push_back(parse_ratio(r, src + ": field \"space.ratios\""));
    if (s.mixers.size() < 2) {
      for (const auto& r : s.ratios) {
        if (r.a > 0) f.fail("ratios", "ratio " + r.str() + " needs two mixer types; the space lists one");
      }
    }
    const auto b = int_list("blocks_per_stage", std::vector<int64_t>{1, 4});
    if (b.size() != 2 || b[0] < 1 || b[1] < b[0]) f.fail("blocks_per_stage", "must be [min, max] with 1 <= min <= max");
    s.min_blocks = int(b[0]);
    s.max_blocks = int(b[1]);
  } else {
    const auto d = int_list("layers", std::vector<int64_t>{1, 8});
    if (d.size() != 2 || d[0] < 1 || d[1] < d[0]) f.fail("layers", "must be [min, max] mixers with 1 <= min <= max");
    s.min_layers = int(d[0]);
    s.max_layers = int(d[1]);
  }
  s.vocab_size = f.positive("vocab_size", 256);
  s.n_meta_tokens = f.non_negative("n_meta_tokens", 0);
  s.tie_embeddings = f.boolean("tie_embeddings", true);
  if (f.has("ops")) {
    const json& ops = f.raw("ops");
    if (!ops.is_object()) f.fail("ops", "must be a table of operator hyperparameter tables");
    for (const auto& [name, hp] : ops.items()) {
      find_op_kind(name, src + ": field \"space.ops\"");
      if (!hp.is_object()) f.fail("ops." + name, "must be a table of hyperparameters");
      s.op_templates[name] = hp;
    }
  }
  f.finish();
  if (!constraints.is_null()) {
    FieldReader c(constraints, src, "constraints");
    s.min_attention = static_cast<int>(c.non_negative("min_attention", 0));
    s.max_params = c.non_negative("max_params", 0);
    c.finish();
    if (s.min_attention > 0 && std::find(s.mixers.begin(), s.mixers.end(), "attn") == s.mixers.end()) {
      throw InputError(src + ": field \"constraints.min_attention\": needs \"attn\" in space.mixers");
    }
  }
  // The smallest structure must fit the operator cap.
  const int min_ops = s.kind == Kind::Staged ? s.stages * s.min_blocks * (1 + s.ffn_choices.front())
                                             : s.min_layers * (1 + s.ffn_choices.front());
  if (min_ops > s.max_operators) {
    throw InputError(src + ": field \"space.max_operators\": " + std::to_string(s.max_operators) +
                     " is below the smallest structure the space allows (" + std::to_string(min_ops) + " operators)");
  }
  // Every template at every width must give a valid architecture.
  for (const auto& a : s.grid_archs()) (void)a;
  return s;
}

json SearchSpace::ops_for_width(int64_t d) const {
  json out = json::object();
  for (const auto& [type, hp] : op_templates) {
    json t = json::object();
    for (const auto& [k, v] : hp.items()) {
      t[k] = eval_template(v, d, source + ": field \"space.ops." + type + "." + k + "\"");
    }
    out[type] = t;
  }
  return out;
}

std::vector<std::string> SearchSpace::op_types() const {
  std::vector<std::string> t = mixers;
  if (ffn_choices.back() > 0) t.push_back("ffn");
  return t;
}

int SearchSpace::operators(const Genome& g) const {
  int n = 0;
  if (kind == Kind::Staged) {
    for (const auto& s : g.stages) n += s.blocks * (ratios[s.ratio].a + ratios[s.ratio].b) * (1 + s.ffn);
  } else {
    for (const auto& l : g.layers) n += 1 + l.ffn;
  }
  return n;
}

void SearchSpace::canonicalize(Genome& g) const {
  for (auto& s : g.stages) {
    if (ratios[s.ratio].a == 0) s.m1 = s.m2;
  }
}

bool SearchSpace::repair(Genome& g) const {
  canonicalize(g);
  if (kind == Kind::Staged) {
    for (int i = int(g.stages.size()) - 1; i >= 0 && operators(g) > max_operators; --i) {
      while (g.stages[i].blocks > min_blocks && operators(g) > max_operators) --g.stages[i].blocks;
    }
  } else {
    while (int(g.layers.size()) > min_layers && operators(g) > max_operators) g.layers.pop_back();
  }
  return operators(g) <= max_operators;
}

Genome SearchSpace::random(Rng& rng) const {
  for (;;) {
    Genome g;
    if (kind == Kind::Staged) {
      for (int i = 0; i < stages; ++i) {
        StageGene s;
        s.ratio = int(rng.below(int64_t(ratios.size())));
        s.m2 = rng.pick(mixers);
        s.m1 = rng.pick(mixers);
        s.ffn = rng.pick(ffn_choices);
        s.blocks = int(rng.between(min_blocks, max_blocks));
        g.stages.push_back(s);
      }
    } else {
      const int n = int(rng.between(min_layers, max_layers));
      for (int i = 0; i < n; ++i) g.layers.push_back({rng.pick(mixers), rng.pick(ffn_choices)});
    }
    if (width_mode == Width::Gene) g.d_model = rng.pick(widths);
    if (repair(g)) return g;
  }
}

Genome SearchSpace::mutate(const Genome& parent, Rng& rng) const {
  for (int attempt = 0; attempt < 200; ++attempt) {
    Genome g = parent;
    // Gene groups: 0 mixer, 1 ratio/depth, 2 ffn, 3 block counts/layer count, 4 width.
    const int groups = width_mode == Width::Gene && widths.size() > 1 ? 5 : 4;
    const int what = int(rng.below(groups));
    if (what == 4) {
      g.d_model = rng.pick(widths);
    } else if (kind == Kind::Staged) {
      StageGene& s = g.stages[size_t(rng.below(int64_t(g.stages.size())))];
      if (what == 0) {
        if (ratios[s.ratio].a > 0 && rng.below(2) == 0) s.m1 = rng.pick(mixers);
        else s.m2 = rng.pick(mixers);
      } else if (what == 1) {
        const bool was_single = ratios[s.ratio].a == 0;
        s.ratio = int(rng.below(int64_t(ratios.size())));
        if (was_single && ratios[s.ratio].a > 0) s.m1 = rng.pick(mixers);
      } else if (what == 2) {
        s.ffn = rng.pick(ffn_choices);
      } else {
        // Move one block between stages, or grow/shrink one stage.
        const size_t i = size_t(rng.below(int64_t(g.stages.size())));
        const size_t j = size_t(rng.below(int64_t(g.stages.size())));
        if (i != j) {
          if (g.stages[i].blocks > min_blocks && g.stages[j].blocks < max_blocks) {
            --g.stages[i].blocks;
            ++g.stages[j].blocks;
          }
        } else {
          g.stages[i].blocks = int(std::clamp<int64_t>(g.stages[i].blocks + (rng.below(2) ? 1 : -1), min_blocks, max_blocks));
        }
      }
    } else {
      const size_t i = size_t(rng.below(int64_t(g.layers.size())));
      if (what == 0) {
        g.layers[i].mixer = rng.pick(mixers);
      } else if (what == 2) {
        g.layers[i].ffn = rng.pick(ffn_choices);
      } else if (what == 1 || what == 3) {
        if (rng.below(2) == 0 && int(g.layers.size()) < max_layers) {
          g.layers.insert(g.layers.begin() + int64_t(rng.below(int64_t(g.layers.size()) + 1)),
                          LayerGene{rng.pick(mixers), rng.pick(ffn_choices)});
        } else if (int(g.layers.size()) > min_layers) {
          g.layers.erase(g.layers.begin() + int64_t(i));
        }
      }
    }
    if (repair(g) && !(g == parent)) return g;
  }
  throw Error(source + ": could not mutate genome \"" + genome_text(parent) +
              "\" into a different valid one in 200 tries; the space is too small");
}

std::optional<std::string> SearchSpace::violation(const Genome& g, const ArchSpec& arch) const {
  if (operators(g) > max_operators) {
    return std::to_string(operators(g)) + " operators exceed max_operators " + std::to_string(max_operators);
  }
  if (min_attention > 0) {
    int n = 0;
    for (const auto& l : arch.layers) n += l.type == "attn";
    if (n < min_attention) {
      return std::to_string(n) + " full-attention layers, constraints.min_attention is " + std::to_string(min_attention);
    }
  }
  if (max_params > 0) {
    const int64_t p = account(arch, 0, 4).params_total;
    if (p > max_params) return std::to_string(p) + " parameters exceed constraints.max_params " + std::to_string(max_params);
  }
  return std::nullopt;
}

ArchSpec SearchSpace::decode(const Genome& g, int64_t d_model) const {
  const int64_t d = d_model > 0 ? d_model : g.d_model;
  if (d <= 0) throw Error("SearchSpace::decode: genome has no width yet");
  std::vector<std::string> types;
  auto mixer = [&](const std::string& m, int ffn) {
    types.push_back(m);
    for (int k = 0; k < ffn; ++k) types.push_back("ffn");
  };
  if (kind == Kind::Staged) {
    for (const auto& s : g.stages) {
      const Ratio r = ratios[s.ratio];
      for (int b = 0; b < s.blocks; ++b) {
        for (int k = 0; k < r.a; ++k) mixer(s.m1, s.ffn);
        for (int k = 0; k < r.b; ++k) mixer(s.m2, s.ffn);
      }
    }
  } else {
    for (const auto& l : g.layers) mixer(l.mixer, l.ffn);
  }
  return build(types, d, genome_text(g));
}

ArchSpec SearchSpace::build(const std::vector<std::string>& types, int64_t d, const std::string& name) const {
  json layers = json::array();
  for (const auto& t : types) layers.push_back({{"type", t}});
  const json doc = {{"format", kArchFormat},     {"vocab_size", vocab_size},         {"d_model", d},
                    {"n_meta_tokens", n_meta_tokens}, {"tie_embeddings", tie_embeddings}, {"op_defaults", ops_for_width(d)},
                    {"layers", layers}};
  ArchSpec a = ArchSpec::from_json(doc, source + " (width " + std::to_string(d) + ")");
  a.name = name;
  return a;
}

std::vector<ArchSpec> SearchSpace::grid_archs() const {
  std::vector<ArchSpec> out;
  for (int64_t w : widths) {
    Genome g;
    for (const auto& m : mixers) g.layers.push_back({m, ffn_choices.back() > 0 ? 1 : 0});
    g.d_model = w;
    SearchSpace flat = *this;
    flat.kind = Kind::Layerwise;
    out.push_back(flat.decode(g, w));
    out.back().name = "grid d=" + std::to_string(w);
  }
  return out;
}

std::string SearchSpace::genome_text(const Genome& g) const {
  std::string s = g.d_model > 0 ? "d=" + std::to_string(g.d_model) : "d=?";
  if (kind == Kind::Staged) {
    for (const auto& st : g.stages) {
      const Ratio r = ratios[st.ratio];
      s += " " + std::to_string(st.blocks) + "x[" + (r.a == 0 ? st.m2 : st.m1 + ":" + st.m2 + " " + r.str()) + " f" +
           std::to_string(st.ffn) + "]";
    }
  } else {
    for (const auto& l : g.layers) s += " " + l.mixer + "+f" + std::to_string(l.ffn);
  }
  return s;
}

Genome SearchSpace::parse_genome(const std::string& text, const std::string& where) const {
  auto bad = [&](const std::string& why) -> InputError {
    return InputError(where + ": genome \"" + text + "\": " + why);
  };
  const auto toks = split_ws(text);
  Genome g;
  size_t i = 0;
  if (i < toks.size() && toks[i].rfind("d=", 0) == 0) {
    if (toks[i] != "d=?") {
      try {
        g.d_model = std::stoll(toks[i].substr(2));
      } catch (const std::exception&) {
        throw bad("width must be d=<integer>");
      }
      if (std::find(widths.begin(), widths.end(), g.d_model) == widths.end()) throw bad("width not in space.widths");
    }
    ++i;
  }
  auto check_mixer = [&](const std::string& m) {
    if (std::find(mixers.begin(), mixers.end(), m) == mixers.end()) {
      throw bad("mixer \"" + m + "\" is not in space.mixers (" + join_or(mixers) + ")");
    }
  };
  auto parse_ffn = [&](const std::string& t) {
    if (t.size() != 2 || t[0] != 'f' || !std::isdigit(static_cast<unsigned char>(t[1]))) throw bad("expected f0, f1 or f2, got \"" + t + "\"");
    const int f = t[1] - '0';
    if (std::find(ffn_choices.begin(), ffn_choices.end(), f) == ffn_choices.end()) throw bad("FFN count not in space.ffn_per_mixer");
    return f;
  };
  if (kind == Kind::Staged) {
    // Tokens per stage: "<n>x[m2" "f<k>]" or "<n>x[m1:m2" "a:b" "f<k>]".
    while (i < toks.size()) {
      StageGene s;
      const std::string& t = toks[i];
      const auto x = t.find("x[");
      if (x == std::string::npos) throw bad("expected <blocks>x[...], got \"" + t + "\"");
      try {
        s.blocks = std::stoi(t.substr(0, x));
      } catch (const std::exception&) {
        throw bad("bad block count in \"" + t + "\"");
      }
      const std::string mix = t.substr(x + 2);
      ++i;
      if (i >= toks.size()) throw bad("stage \"" + t + "\" is incomplete");
      std::string ratio = "0:1";
      if (mix.find(':') != std::string::npos) {
        s.m1 = mix.substr(0, mix.find(':'));
        s.m2 = mix.substr(mix.find(':') + 1);
        ratio = toks[i++];
        check_mixer(s.m1);
      } else {
        s.m1 = s.m2 = mix;
      }
      check_mixer(s.m2);
      const Ratio r = parse_ratio(ratio, where);
      const auto it = std::find_if(ratios.begin(), ratios.end(), [&](const Ratio& q) { return q.a == r.a && q.b == r.b; });
      if (it == ratios.end()) throw bad("ratio " + ratio + " not in space.ratios");
      s.ratio = int(it - ratios.begin());
      if (i >= toks.size() || toks[i].back() != ']') throw bad("stage must end with f<k>]");
      s.ffn = parse_ffn(toks[i].substr(0, toks[i].size() - 1));
      ++i;
      if (s.blocks < min_blocks || s.blocks > max_blocks) throw bad("block count outside space.blocks_per_stage");
      g.stages.push_back(s);
    }
    if (int(g.stages.size()) != stages) throw bad("needs " + std::to_string(stages) + " stages");
  } else {
    for (; i < toks.size(); ++i) {
      const auto plus = toks[i].find('+');
      if (plus == std::string::npos) throw bad("expected <mixer>+f<k>, got \"" + toks[i] + "\"");
      LayerGene l{toks[i].substr(0, plus), parse_ffn(toks[i].substr(plus + 1))};
      check_mixer(l.mixer);
      g.layers.push_back(l);
    }
    if (int(g.layers.size()) < min_layers || int(g.layers.size()) > max_layers) throw bad("depth outside space.layers");
  }
  canonicalize(g);
  if (operators(g) > max_operators) throw bad("exceeds space.max_operators");
  return g;
}

json SearchSpace::genome_json(const Genome& g) const {
  json j = {{"text", genome_text(g)}, {"d_model", g.d_model}, {"operators", operators(g)}};
  return j;
}

}  // namespace flashnas
