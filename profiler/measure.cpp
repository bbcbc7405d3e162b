#include "profiler/measure.h"

#include <chrono>
#include <memory>
#include <set>

#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include "common/device.h"
#include "common/error.h"
#include "profiler/predict.h"
#include "supernet/hybrid_lm.h"
#ifdef FLASHNAS_WITH_CUDA
#include "profiler/cuda_timing.h"
#endif

namespace flashnas {

namespace {

const CpuCaches& cpu_caches() {
  static const CpuCaches c = read_cpu_caches();
  return c;
}

constexpr size_t kMaxCopies = 32;

// A runtime must be one flashnas knows, and cudagraph needs a CUDA device.
void check_runtime(const std::string& runtime, const torch::Device& device) {
  if (runtime != "eager" && runtime != "cudagraph") {
    throw InputError("runtime: must be eager or cudagraph, got \"" + runtime + "\"");
  }
  if (runtime == "cudagraph" && !device.is_cuda()) {
    throw InputError("runtime cudagraph needs a CUDA device; the CPU runs eager only");
  }
}

// One timing run in the entry's runtime: host clock on CPU; CUDA events on a
// GPU, replaying a CUDA graph of the call for runtime "cudagraph".
TimingStats time_once(const std::function<void()>& fn, const MeasureOptions& opts, const std::string& runtime) {
  check_runtime(runtime, opts.device);
  if (opts.device.is_cpu()) return measure(fn, opts.timing);
#ifdef FLASHNAS_WITH_CUDA
  return runtime == "cudagraph" ? measure_cuda_graph(fn, opts.timing) : measure_cuda_events(fn, opts.timing);
#else
  throw InputError("device " + opts.device.str() + ": this flashnas was built without CUDA (-DFLASHNAS_CUDA=ON)");
#endif
}

TimingStats calmest(const std::function<void()>& fn, const MeasureOptions& opts, const std::string& runtime) {
  TimingStats best;
  for (int a = 0; a < std::max(1, opts.attempts); ++a) {
    TimingStats s = time_once(fn, opts, runtime);
    if (a == 0 || s.cv < best.cv) best = std::move(s);
    if (best.cv <= opts.max_cv) break;
  }
  return best;
}

// A one-layer spec whose ends (embedding, norm, head) match the key's.
ArchSpec ends_spec(const LutKey& key) {
  const json hp = json::parse(key.hp);
  return ArchSpec::from_json(json{{"d_model", key.d_model},
                                  {"vocab_size", hp.at("vocab_size")},
                                  {"tie_embeddings", hp.at("tie_embeddings")},
                                  {"layers", {{{"type", "ffn"}, {"d_ff", 8}}}}},
                             "embed_head entry");
}

}  // namespace

MeasureOptions measure_options(torch::Device device, torch::ScalarType dtype, const std::string& runtime) {
  check_runtime(runtime, device);
  MeasureOptions m;
  m.device = device;
  m.dtype = dtype;
  m.runtime = runtime;
  if (device.is_cuda()) m.timing.sync = [] { torch::cuda::synchronize(); };
  return m;
}

int64_t rotation_bytes(const CpuCaches& c, int threads) {
  const int64_t t = std::max(1, threads);
  if (c.l2 > 0) return 2 * c.l2 * t;
  if (c.l3 > 0) return c.l3 / 2;
  return int64_t(8) << 20;
}

TimingStats measure_entry(const LutKey& key, const MeasureOptions& opts) {
  c10::InferenceMode inference;
  const int64_t B = key.batch, L = key.length, d = key.d_model;
  auto act = torch::TensorOptions().dtype(opts.dtype).device(opts.device);
  if (key.op == "embed_head") {
    HybridLM model(ends_spec(key));
    model->to(opts.device, opts.dtype);
    if (key.phase == Phase::Prefill) {
      auto tokens = torch::randint(0, model->spec().vocab_size, {B, L}, act.dtype(torch::kLong));
      return calmest([&] { model->head(model->embed(tokens, false)); }, opts, key.runtime);
    }
    auto token = torch::randint(0, model->spec().vocab_size, {B, 1}, act.dtype(torch::kLong));
    return calmest([&] { model->head(model->embed(token, false).squeeze(1)).argmax(-1); }, opts, key.runtime);
  }
  // Rotating copies: K independent sublayers stepped in turn, the time
  // divided by K. Their weights together exceed the CPU's private caches, as
  // the other layers of a whole model make them; timing one layer again and
  // again would keep its weights cache-hot and underestimate it.
  std::vector<Sublayer> copies;
  int64_t bytes = 0;
  do {
    copies.emplace_back(LayerSpec{key.op, json::parse(key.hp)}, d, 1e-5);
    copies.back()->to(opts.device, opts.dtype);
    for (const auto& p : copies.back()->parameters()) bytes += p.numel() * p.element_size();
  } while (opts.device.is_cpu() && bytes < rotation_bytes(cpu_caches(), at::get_num_threads()) &&
           copies.size() < kMaxCopies);
  const double k = double(copies.size());
  std::vector<OpState> states;
  auto per_layer = [k](TimingStats s) {
    for (double* v : {&s.median_us, &s.p10_us, &s.p90_us, &s.mean_us, &s.min_us}) *v /= k;
    for (auto& v : s.samples_us) v /= k;
    return s;
  };
  if (key.phase == Phase::Prefill) {
    auto x = torch::randn({B, L, d}, act);
    for (auto& c : copies) states.push_back(c->op->init_state(B, L, opts.dtype));
    return per_layer(calmest(
        [&] {
          for (size_t i = 0; i < copies.size(); ++i) {
            // A prefill starts from a fresh, zeroed state.
            for (auto& [name, t] : states[i].buffers) t.zero_();
            states[i].pos = 0;
            copies[i]->forward(x, &states[i]);
          }
        },
        opts, key.runtime));
  }
  auto x = torch::randn({B, d}, act);
  for (auto& c : copies) states.push_back(c->op->init_state(B, L + 1, opts.dtype));
  return per_layer(calmest(
      [&] {
        for (size_t i = 0; i < copies.size(); ++i) {
          states[i].pos = L;  // a state holding L tokens; the contents do not change the cost
          copies[i]->step(x, states[i]);
        }
      },
      opts, key.runtime));
}

std::vector<LutKey> plan_entries(const std::vector<ArchSpec>& archs, const std::vector<Workload>& workloads,
                                 const std::string& dtype, const std::string& runtime) {
  std::vector<LutKey> plan;
  std::set<std::string> seen;
  auto push = [&](LutKey k) {
    if (seen.insert(k.describe()).second) plan.push_back(std::move(k));
  };
  for (const auto& w : workloads) {
    for (const auto& a : archs) {
      const int64_t lo = w.prompt + a.n_meta_tokens, hi = lo + w.generate - 1;
      std::vector<int64_t> contexts;
      if (w.generate > 0) {
        contexts.push_back(lo);
        for (int64_t p = 1; p < hi; p *= 2) {
          if (p > lo) contexts.push_back(p);
        }
        if (hi != lo) contexts.push_back(hi);
      }
      auto entries_for = [&](const LutKey& base) {
        if (lo > 0) {
          LutKey k = base;
          k.phase = Phase::Prefill;
          k.length = lo;
          push(k);
        }
        for (int64_t t : contexts) {
          LutKey k = base;
          k.phase = Phase::Decode;
          k.length = t;
          push(k);
        }
      };
      for (const auto& l : a.layers) entries_for(sublayer_key(l, a.d_model, Phase::Decode, w.batch, 0, dtype, runtime));
      entries_for(ends_key(a, Phase::Decode, w.batch, 0, dtype, runtime));
    }
  }
  return plan;
}

ProfileReport run_profile(const std::vector<LutKey>& plan, LutStore& store, int64_t device,
                          const MeasureOptions& opts, double max_minutes,
                          const std::function<void(int64_t, int64_t, const LutKey&, const TimingStats&, double)>& progress,
                          int rounds) {
  using clock = std::chrono::steady_clock;
  ProfileReport r;
  r.planned = static_cast<int64_t>(plan.size());
  r.rounds = rounds;
  // Work items: (entry, round) pairs not done yet, round by round, so the
  // rounds of one entry are spread over the whole run.
  std::vector<std::pair<const LutKey*, int>> todo;
  for (int round = 1; round <= rounds; ++round) {
    for (const auto& k : plan) {
      const auto v = store.get(device, k);
      const int64_t have = v ? v->rounds : 0;
      if (round == 1 && have >= rounds) ++r.skipped;
      if (have < round) todo.emplace_back(&k, round);
    }
  }
  const auto t0 = clock::now();
  const int threads = opts.device.is_cpu() ? at::get_num_threads() : 0;
  for (size_t i = 0; i < todo.size(); ++i) {
    const double elapsed = std::chrono::duration<double>(clock::now() - t0).count();
    if (max_minutes > 0 && elapsed > max_minutes * 60) {
      r.time_limited = true;
      break;
    }
    const TimingStats s = measure_entry(*todo[i].first, opts);
    store.put(device, *todo[i].first, s, threads);  // its own commit: an interrupted run loses at most this round
    ++r.measured;
    const double spent = std::chrono::duration<double>(clock::now() - t0).count();
    if (progress) {
      progress(static_cast<int64_t>(i + 1), static_cast<int64_t>(todo.size()), *todo[i].first, s,
               spent / static_cast<double>(i + 1) * static_cast<double>(todo.size() - i - 1));
    }
  }
  r.seconds = std::chrono::duration<double>(clock::now() - t0).count();
  return r;
}

BenchResult bench_rounds(const ArchSpec& spec, const Workload& w, const MeasureOptions& opts, int rounds) {
  check_timing(opts.timing);
  if (rounds < 1) throw InputError("--rounds: must be >= 1, got " + std::to_string(rounds));
  BenchResult best;
  for (int i = 0; i < std::max(1, rounds); ++i) {
    BenchResult r = bench_workload(spec, w, opts);
    if (i == 0 || r.total.median_us < best.total.median_us) best = std::move(r);
  }
  return best;
}

json BenchResult::to_json() const {
  auto stats = [](const TimingStats& s) {
    return json{{"median_ms", s.median_us / 1e3}, {"p10_ms", s.p10_us / 1e3}, {"p90_ms", s.p90_us / 1e3},
                {"cv", s.cv},                     {"count", s.count}};
  };
  return json{{"total", stats(total)}, {"prefill", stats(prefill)}, {"decode", stats(decode)}};
}

namespace {

// The decode steps of `w` captured as CUDA graphs (see bench_workload).
std::function<void()> graphed_decode(HybridLM& model, const torch::Tensor& prompt, const Workload& w,
                                     const MeasureOptions& opts) {
  check_runtime(opts.runtime, opts.device);
  if (opts.runtime == "eager") return {};
#ifdef FLASHNAS_WITH_CUDA
  auto cache = std::make_shared<ModelCache>(model->init_cache(w.batch, w.prompt + w.generate, opts.dtype));
  torch::Tensor token = w.prompt > 0 ? model->extend(prompt, *cache).select(1, w.prompt - 1).argmax(-1)
                                     : prompt.select(1, 0).clone();
  auto graphs = std::make_shared<DecodeGraphs>(w.generate, [&](int64_t, bool capture) {
    if (capture) {
      token.copy_(model->step(token, *cache).argmax(-1));
      return;
    }
    // The eager warm-up must not advance the positions the capture bakes in.
    std::vector<int64_t> pos;
    for (const auto& l : cache->layers) pos.push_back(l.pos);
    const int64_t model_pos = cache->pos;
    model->step(token, *cache);
    cache->pos = model_pos;
    for (size_t i = 0; i < pos.size(); ++i) cache->layers[i].pos = pos[i];
  });
  return [graphs, cache, token] { graphs->replay(); };
#else
  (void)model, (void)prompt, (void)w;
  throw InputError("device " + opts.device.str() + ": this flashnas was built without CUDA (-DFLASHNAS_CUDA=ON)");
#endif
}

}  // namespace

BenchResult bench_workload(const ArchSpec& spec, const Workload& w, const MeasureOptions& opts) {
  using clock = std::chrono::steady_clock;
  c10::InferenceMode inference;
  HybridLM model(spec);
  model->to(opts.device, opts.dtype);
  auto prompt = torch::randint(0, spec.vocab_size, {w.batch, std::max<int64_t>(w.prompt, 1)},
                               torch::TensorOptions().dtype(torch::kLong).device(opts.device));
  const std::function<void()> replay_decode = graphed_decode(model, prompt, w, opts);
  std::vector<double> pre, dec;
  auto sample = [&] {
    const auto t0 = clock::now();
    ModelCache cache = model->init_cache(w.batch, w.prompt + w.generate, opts.dtype);
    torch::Tensor last;
    if (w.prompt > 0) last = model->extend(prompt, cache).select(1, w.prompt - 1);
    // On a GPU the prefill's kernels are still running here: wait for them, or
    // the split between prefill and decode would be wrong.
    if (opts.timing.sync) opts.timing.sync();
    const auto t1 = clock::now();
    if (replay_decode) {
      replay_decode();
    } else {
      torch::Tensor token = w.prompt > 0 ? last.argmax(-1) : prompt.select(1, 0);
      for (int64_t g = 0; g < w.generate; ++g) token = model->step(token, cache).argmax(-1);
    }
    if (opts.timing.sync) opts.timing.sync();
    const auto t2 = clock::now();
    pre.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    dec.push_back(std::chrono::duration<double, std::micro>(t2 - t1).count());
  };
  BenchResult r;
  r.total = measure(sample, opts.timing);
  // Drop the warm-up samples so the parts line up with the timed ones.
  pre.erase(pre.begin(), pre.end() - r.total.count);
  dec.erase(dec.begin(), dec.end() - r.total.count);
  r.prefill = summarize(pre);
  r.decode = summarize(dec);
  return r;
}

}  // namespace flashnas
