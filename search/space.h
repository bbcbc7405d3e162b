// Search spaces (docs/design.md, "Data flow of one trial"), read from the [space] and
// [constraints] tables of a search config, and the genomes they produce.
//
// staged (the paper's): `stages` stages, each repeating one block type. A
// block holds mixers m1 and m2 in a hybrid ratio a:b (a copies of m1, then b
// of m2; 0:1 means m2 alone), each mixer followed by `ffn` FFN sublayers.
// Genes per stage: m1, m2, ratio, ffn, block count. Total operators (mixers
// plus FFNs) are capped at max_operators: blocks are removed from the last
// stage first (keeping each stage at its minimum) until the cap holds.
//
// layerwise: a list of layers, each a mixer followed by 0..2 FFNs; depth in
// [min_layers, max_layers].
//
// Width (d_model) comes from `widths`. With width = "fit" (the paper's rule)
// it is not a gene: the search sets it to the largest width that meets every
// budget. With width = "gene" it is mutated like any other gene, so one
// study can trace the whole loss-latency frontier.
//
// Operator hyperparameters come from [space.ops.<type>] templates; integer
// fields may be written as products and quotients of "d_model" and integer
// constants ("d_model / 32", "3 * d_model"), evaluated exactly per width.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/json_io.h"
#include "search/rng.h"
#include "supernet/arch_spec.h"

namespace flashnas {

struct StageGene {
  std::string m1, m2;  // mixer types; with ratio 0:1 m1 equals m2 (canonical)
  int ratio = 0;       // index into SearchSpace::ratios
  int ffn = 0;         // FFNs after each mixer
  int blocks = 1;      // block count
  bool operator==(const StageGene&) const = default;
};

struct LayerGene {
  std::string mixer;
  int ffn = 0;
  bool operator==(const LayerGene&) const = default;
};

struct Genome {
  std::vector<StageGene> stages;  // staged spaces
  std::vector<LayerGene> layers;  // layerwise spaces
  int64_t d_model = 0;            // 0: not fitted yet (width = "fit")
  bool operator==(const Genome&) const = default;
};

struct Ratio {
  int a = 0, b = 1;
  std::string str() const { return std::to_string(a) + ":" + std::to_string(b); }
};

class SearchSpace {
 public:
  enum class Kind { Staged, Layerwise };
  enum class Width { Fit, Gene };

  // `space` is the [space] table, `constraints` the [constraints] table (may
  // be null). InputError naming "<source>: field \"space.x\"" for bad values;
  // every operator template is checked at every width.
  static SearchSpace from_json(const json& space, const json& constraints, const std::string& source);

  Kind kind = Kind::Staged;
  Width width_mode = Width::Fit;
  std::vector<int64_t> widths;        // ascending
  std::vector<std::string> mixers;    // mixer types the space may use
  std::vector<Ratio> ratios;          // staged
  std::vector<int> ffn_choices;       // FFNs per mixer
  int stages = 3;                     // staged
  int min_blocks = 1, max_blocks = 4; // staged, per stage
  int min_layers = 1, max_layers = 8; // layerwise, mixers
  int max_operators = 30;
  int min_attention = 0;              // constraint: at least this many full-attention (attn) layers
  int64_t max_params = 0;             // constraint: 0 = none
  int64_t vocab_size = 256, n_meta_tokens = 0;
  bool tie_embeddings = true;
  std::map<std::string, json> op_templates;  // type -> hyperparameter templates
  std::string source;

  // Operator types the space can emit (mixers, then "ffn" when FFNs are possible).
  std::vector<std::string> op_types() const;
  // A uniformly drawn genome (repaired; may still violate constraints).
  Genome random(Rng& rng) const;
  // A copy with exactly one gene changed, repaired; differs from `g`.
  Genome mutate(const Genome& g, Rng& rng) const;
  // Applies the operator cap (removing blocks or layers from the end).
  // Returns false when even the minimum structure exceeds it.
  bool repair(Genome& g) const;
  int operators(const Genome& g) const;
  // The first violated constraint, as a sentence; nullopt when none.
  std::optional<std::string> violation(const Genome& g, const ArchSpec& arch) const;
  // The architecture at width `d_model` (g.d_model when 0 is passed).
  ArchSpec decode(const Genome& g, int64_t d_model = 0) const;
  // Any sequence of sublayer types (e.g. {"attn", "ffn", "attn", "ffn"})
  // at width `d_model`, with the space's operator templates, vocabulary,
  // meta tokens and tying: hand-made designs priced on the same table
  // (search/baselines.h). `name` labels it.
  ArchSpec build(const std::vector<std::string>& types, int64_t d_model, const std::string& name) const;
  // One architecture per width holding every operator type the space can
  // emit: the profiler's grid (each sublayer key any genome can produce).
  std::vector<ArchSpec> grid_archs() const;

  // "d=128 2x[swa:mamba2 1:2 f1] 1x[deltanet f0] ..." (staged) or
  // "d=128 swa+f1 mamba2+f0 ..." (layerwise); parse_genome reads it back.
  std::string genome_text(const Genome& g) const;
  Genome parse_genome(const std::string& text, const std::string& where) const;
  json genome_json(const Genome& g) const;

 private:
  json ops_for_width(int64_t d_model) const;
  void canonicalize(Genome& g) const;
};

// Evaluates a template value for one width: integers and floats pass through,
// strings are products/quotients of integers and "d_model" and must divide
// exactly. InputError naming `field` otherwise.
json eval_template(const json& v, int64_t d_model, const std::string& field);

}  // namespace flashnas
