#include "profiler/predict.h"

#include <algorithm>

#include "common/device.h"
#include "common/error.h"
#include "supernet/accounting.h"

namespace flashnas {

json Prediction::to_json() const {
  return json{{"total_ms", total_ms},         {"raw_prefill_ms", raw_prefill_ms}, {"raw_decode_ms", raw_decode_ms},
              {"layer_ms", layer_ms},         {"ends_ms", ends_ms},               {"interpolated", interpolated},
              {"model", model}};
}

LutKey sublayer_key(const LayerSpec& layer, int64_t d_model, Phase phase, int64_t batch, int64_t length,
                    const std::string& dtype, const std::string& runtime) {
  return LutKey{layer.type, layer.hp.dump(), d_model, phase, batch, length, dtype, runtime};
}

LutKey ends_key(const ArchSpec& spec, Phase phase, int64_t batch, int64_t length, const std::string& dtype,
                const std::string& runtime) {
  const json hp = {{"vocab_size", spec.vocab_size}, {"tie_embeddings", spec.tie_embeddings}};
  return LutKey{"embed_head", hp.dump(), spec.d_model, phase, batch, length, dtype, runtime};
}

namespace {

// The stored value at `key.length`, or a linear interpolation between the
// nearest stored lengths around it. Throws naming the entry when there is no
// bracketing pair.
struct Lookup {
  const LutTable& lut;

  // Sum of the entry over lengths [lo, hi] (inclusive); counts interpolated ones.
  double sum(LutKey key, int64_t lo, int64_t hi, int64_t* n_interp) const {
    static const std::vector<std::pair<int64_t, double>> kNone;
    const auto* found = lut.series(key);
    const auto& series = found ? *found : kNone;
    std::vector<int64_t> grid;
    for (const auto& [len, us] : series) grid.push_back(len);
    key.length = lo;
    // The table does not cover the architecture or workload asked for: the
    // user's input, answered by profiling them.
    static const std::string kFix = "; add it with flashnas profile --arch ARCH --workload WORKLOAD on the table's device";
    if (grid.empty()) throw InputError("missing LUT entry: " + key.describe() + " (no entries for this operator)" + kFix);
    if (grid.front() > lo || grid.back() < hi) {
      throw InputError("missing LUT entry: " + key.describe() + "; needs " + phase_name(key.phase) + " lengths " +
                       std::to_string(lo) + ".." + std::to_string(hi) + ", the table covers " +
                       std::to_string(grid.front()) + ".." + std::to_string(grid.back()) + kFix);
    }
    std::vector<double> value(grid.size());
    for (size_t i = 0; i < grid.size(); ++i) value[i] = series[i].second;
    double total = 0;
    size_t seg = 0;
    for (int64_t t = lo; t <= hi; ++t) {
      while (seg + 1 < grid.size() && grid[seg + 1] < t) ++seg;
      if (grid[seg] == t) {
        total += value[seg];
      } else if (seg + 1 < grid.size() && grid[seg + 1] == t) {
        total += value[seg + 1];
      } else {
        const double f = static_cast<double>(t - grid[seg]) / static_cast<double>(grid[seg + 1] - grid[seg]);
        total += value[seg] + f * (value[seg + 1] - value[seg]);
        ++*n_interp;
      }
    }
    return total;
  }
};

}  // namespace

Prediction predict(const ArchSpec& spec, const Workload& w, const LutTable& lut, bool use_model) {
  Prediction p;
  const Lookup look{lut};
  const int64_t M = spec.n_meta_tokens, P = w.prompt, G = w.generate;
  // Without a prompt the meta tokens still form the prefill (when there are any).
  const int64_t prefill_len = P + M;
  auto add = [&](const LutKey& base, double* bucket) {
    double us = 0;
    if (prefill_len > 0) {
      LutKey k = base;
      k.phase = Phase::Prefill;
      int64_t n = 0;
      const double v = look.sum(k, prefill_len, prefill_len, &n);
      if (n) p.interpolated.push_back(k.describe() + ": interpolated between stored lengths");
      p.raw_prefill_ms += v / 1e3;
      p.row.groups[group_key(k.op, k.d_model, "prefill")] += v / 1e3;
      us += v;
    }
    if (G > 0) {
      LutKey k = base;
      k.phase = Phase::Decode;
      int64_t n = 0;
      // cudagraph: every step reads the whole cache, whose capacity
      // (prefill + G positions) is the entry's length; eager: step i sees
      // prefill_len + i keys.
      const double v = lut.runtime == "cudagraph" ? double(G) * look.sum(k, prefill_len + G, prefill_len + G, &n)
                                                  : look.sum(k, prefill_len, prefill_len + G - 1, &n);
      if (n) {
        k.length = prefill_len;
        p.interpolated.push_back(k.describe() + ": " + std::to_string(n) + " of " + std::to_string(G) +
                                 " contexts interpolated");
      }
      p.raw_decode_ms += v / 1e3;
      p.row.groups[group_key(k.op, k.d_model, "decode")] += v / 1e3;
      us += v;
    }
    *bucket += us / 1e3;
  };
  for (const auto& layer : spec.layers) {
    p.layer_ms.push_back(0);
    add(sublayer_key(layer, spec.d_model, Phase::Decode, w.batch, 0, lut.dtype, lut.runtime), &p.layer_ms.back());
  }
  add(ends_key(spec, Phase::Decode, w.batch, 0, lut.dtype, lut.runtime), &p.ends_ms);
  p.row.prefill_raw_ms = p.raw_prefill_ms;
  p.row.decode_raw_ms = p.raw_decode_ms;
  p.row.layers = int64_t(spec.layers.size());
  p.row.steps = G;
  p.row.prefill = prefill_len > 0;
  p.row.arch = spec.hash();
  p.row.weight_mb = double(account(spec, 0, 4).params_total) * double(dtype_bytes(parse_dtype(lut.dtype, "table dtype"))) / 1e6;
  p.total_ms = p.raw_prefill_ms + p.raw_decode_ms;
  if (use_model) {
    if (const LatencyModel* m = lut.model(w.batch)) {
      p.total_ms = m->apply(p.row);
      p.model = m->to_json();
      p.model["batch"] = w.batch;
    }
  }
  return p;
}

Prediction predict(const ArchSpec& spec, const Workload& w, const LutStore& lut, int64_t device,
                   const std::string& dtype, const std::string& runtime, bool use_model) {
  return predict(spec, w, LutTable::load(lut, device, dtype, runtime), use_model);
}

}  // namespace flashnas
