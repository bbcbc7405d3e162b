#include "train/trainer.h"

#include "train/checkpoint.h"
#include "train/loss.h"

#include <ATen/Parallel.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/serialize.h>

#include <chrono>
#include <fstream>
#include <set>
#include <sstream>

#include "common/device.h"
#include "common/error.h"
#include "common/files.h"
#include "common/stop.h"
#include "common/format.h"
#include "common/version.h"
#include "supernet/hybrid_lm.h"
#include "train/safetensors.h"
#include "train/weight_norm.h"

namespace flashnas {
namespace fs = std::filesystem;

namespace {

json curve_json(const std::vector<CurvePoint>& curve) {
  json arr = json::array();
  auto num = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
  for (const auto& p : curve) {
    arr.push_back({{"step", p.step}, {"tokens", p.tokens}, {"train_loss", num(p.train_loss)},
                   {"val_loss", num(p.val_loss)}, {"lr", p.lr}, {"grad_norm", p.grad_norm},
                   {"elapsed_s", p.elapsed_s}});
  }
  return arr;
}

std::vector<CurvePoint> curve_from_json(const json& arr) {
  std::vector<CurvePoint> out;
  auto num = [](const json& v) { return v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>(); };
  for (const auto& p : arr) {
    out.push_back({p.at("step").get<int64_t>(), p.at("tokens").get<int64_t>(), num(p.at("train_loss")),
                   num(p.at("val_loss")), p.at("lr").get<double>(), p.at("grad_norm").get<double>(),
                   p.at("elapsed_s").get<double>()});
  }
  return out;
}

std::string curve_csv(const std::vector<CurvePoint>& curve) {
  std::ostringstream s;
  s.precision(17);
  s << "step,tokens,train_loss,val_loss,lr,grad_norm,elapsed_s\n";
  for (const auto& p : curve) {
    s << p.step << ',' << p.tokens << ',' << p.train_loss << ',';
    if (std::isfinite(p.val_loss)) s << p.val_loss;
    s << ',' << p.lr << ',' << p.grad_norm << ',' << p.elapsed_s << '\n';
  }
  return s.str();
}

json data_identity(const TokenDataset& d) {
  json j = json{{"path", fs::absolute(d.file().path()).string()},
              {"tokens", d.file().num_tokens()},
              {"docs", d.file().num_docs()},
              {"vocab_size", d.file().vocab_size()},
              {"split", {{"seed", d.seed()}, {"val_fraction", d.val_fraction()}}},
              {"train", {{"docs", d.train().docs}, {"tokens", d.train().tokens}, {"bytes", d.train().bytes}}},
              {"val", {{"docs", d.val().docs}, {"tokens", d.val().tokens}, {"bytes", d.val().bytes}}}};
  if (d.task()) {
    // Task data: losses and bits per byte count completion tokens only.
    j["task"] = {{"train", {{"completion_tokens", d.train().completion_tokens}, {"completion_bytes", d.train().completion_bytes}}},
                 {"val", {{"completion_tokens", d.val().completion_tokens}, {"completion_bytes", d.val().completion_bytes}}}};
  }
  return j;
}


// The model, its optimizer and what a checkpoint holds of one run.
struct RunState {
  HybridLM model{nullptr};
  WeightNormPlan plan;
  std::vector<torch::Tensor> all_params;
  std::unique_ptr<torch::optim::AdamW> optimizer;
  json identity;  // architecture hash, recipe and data: what a checkpoint must match
  int64_t start_step = 0;
  double pending_sum = 0;  // training loss summed over the steps since the last curve point
  int64_t pending_n = 0;
  std::vector<CurvePoint> curve;
  double prior_elapsed = 0;  // seconds spent before this process continued the run
};

// The seeded model (on the unit sphere with weight normalization) and AdamW:
// decay only on matrices that are neither weight-normalised nor embeddings.
RunState make_state(const ArchSpec& arch, const TrainRecipe& recipe, torch::Device device, torch::ScalarType dtype,
                    json identity) {
  RunState s;
  s.identity = std::move(identity);
  torch::manual_seed(recipe.seed);
  s.model = HybridLM(arch);
  s.model->to(device, dtype);
  s.plan = weight_norm_plan(*s.model);
  if (recipe.weight_norm) apply_weight_norm(s.plan);
  std::set<const void*> normed;
  for (const auto& t : s.plan.rows) normed.insert(t.unsafeGetTensorImpl());
  for (const auto& t : s.plan.cols) normed.insert(t.unsafeGetTensorImpl());
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& p : s.model->named_parameters()) {
    const bool is_normed = recipe.weight_norm && normed.count(p.value().unsafeGetTensorImpl());
    const bool is_embedding = p.key() == "embed_tokens.weight" || p.key() == "meta_tokens";
    (p.value().dim() >= 2 && !is_normed && !is_embedding ? decay : no_decay).push_back(p.value());
    s.all_params.push_back(p.value());
  }
  auto opts = [&](double wd) { return torch::optim::AdamWOptions(recipe.lr).betas({0.9, 0.95}).eps(1e-8).weight_decay(wd); };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(opts(recipe.weight_decay)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(opts(0.0)));
  s.optimizer = std::make_unique<torch::optim::AdamW>(groups, opts(0.0));
  return s;
}

// Loads a checkpoint folder into `s`. `other_length`: it may come from a wsd
// run planned for another number of tokens, up to this run's stable end.
// `flag` names the source in errors.
void load_state(RunState& s, const fs::path& dir, bool other_length, const std::string& flag, const TrainRecipe& recipe) {
  const json state = load_json_file(dir / "state.json");
  json want = s.identity, have = state.at("identity");
  for (json* j : {&want, &have}) {
    (*j)["recipe"].erase("threads");
    if (other_length) (*j)["recipe"].erase("tokens");
  }
  if (want != have) {
    throw InputError(flag + ": the checkpoint in " + dir.string() +
                     " was made with another architecture, recipe or data; differing: " + json::diff(have, want).dump());
  }
  s.start_step = state.at("step").get<int64_t>();
  if (other_length && s.start_step > recipe.stable_end_step()) {
    throw InputError(flag + ": the checkpoint in " + dir.string() + " is at step " + std::to_string(s.start_step) +
                     ", past this run's stable end (step " + std::to_string(recipe.stable_end_step()) +
                     "); it can only be continued by a longer run");
  }
  load_into(*s.model, load_safetensors(dir / "model.safetensors"), (dir / "model.safetensors").string());
  torch::load(*s.optimizer, (dir / "optimizer.pt").string());
  s.pending_sum = state.at("pending_loss_sum").get<double>();
  s.pending_n = state.at("pending_steps").get<int64_t>();
  s.curve = curve_from_json(state.at("curve"));
  s.prior_elapsed = state.at("elapsed_s").get<double>();
}

// Where a run starts: its own checkpoint (`resume`), another run's stable
// state (`continue_from`), or step 0, refusing to overwrite a checkpoint.
void restore(RunState& s, const fs::path& out, bool resume, const fs::path& continue_from, const TrainRecipe& recipe) {
  std::error_code ec;
  const fs::path ckpt = out / "checkpoint", ckpt_old = out / "checkpoint.old";
  if (!fs::exists(ckpt, ec) && fs::exists(ckpt_old, ec)) fs::rename(ckpt_old, ckpt, ec);  // interrupted swap
  if (resume) {
    if (!fs::exists(ckpt / "state.json", ec)) {
      throw InputError("--resume: no checkpoint in " + out.string() + " (expected " + (ckpt / "state.json").string() + ")");
    }
    load_state(s, ckpt, false, "--resume", recipe);
  } else if (fs::exists(ckpt, ec)) {
    throw InputError("--out " + out.string() +
                     " already holds a training checkpoint; pass --resume to continue it or choose another --out");
  } else if (!continue_from.empty()) {
    const fs::path old = continue_from.string() + ".old";
    if (!fs::exists(continue_from, ec) && fs::exists(old, ec)) fs::rename(old, continue_from, ec);  // interrupted swap
    if (!fs::exists(continue_from / "state.json", ec)) {
      throw InputError("continue: no stable checkpoint in " + continue_from.string());
    }
    load_state(s, continue_from, true, "continue", recipe);
  }
}

// Mean validation loss (nats per token) over the recipe's fixed validation batches.
double validation_loss(RunState& s, const TokenDataset& data, const TrainRecipe& recipe, torch::Device device) {
  torch::NoGradGuard no_grad;
  const int64_t B = recipe.batch_size, T = recipe.seq_len;
  LossSum sum;
  for (int64_t i = 0; i < recipe.eval_batches; ++i) {
    torch::Tensor w;
    auto batch = data.val_batch(i, B, T, &w).to(device);
    auto logits = s.model->forward(batch.narrow(1, 0, T));
    const LossSum part = lm_loss_sum(logits, batch.narrow(1, 1, T), w);
    sum.nats += part.nats;
    sum.count += part.count;
  }
  return sum.nats / std::max(1.0, sum.count);
}

// Writes the state after `step_done` steps to `dir` crash-safely: into
// dir.tmp, then swapped in, the old one kept until the new one is complete.
void save_state(RunState& s, const fs::path& dir, int64_t step_done, double elapsed_s) {
  std::error_code ec;
  const fs::path tmp = dir.string() + ".tmp", old = dir.string() + ".old";
  fs::remove_all(tmp, ec);
  try {
    fs::create_directories(tmp);
    save_safetensors(tmp / "model.safetensors", named_tensors(*s.model));
    // Serialised in memory and written by write_file_atomic: LibTorch's own
    // file writer throws from a destructor when the disk is full (abort).
    std::ostringstream opt;
    torch::save(*s.optimizer, opt);
    write_file_atomic(tmp / "optimizer.pt", opt.str());
    const json state = {{"identity", s.identity},         {"step", step_done},
                        {"pending_loss_sum", s.pending_sum}, {"pending_steps", s.pending_n},
                        {"curve", curve_json(s.curve)},    {"elapsed_s", elapsed_s}};
    write_file_atomic(tmp / "state.json", state.dump(1));
  } catch (const std::exception& e) {
    fs::remove_all(tmp, ec);
    throw IoError(dir.string() + ": cannot write the checkpoint of step " + std::to_string(step_done) + " (" + e.what() +
                  "); the previous checkpoint, if any, is intact");
  }
  if (fs::exists(dir, ec)) fs::rename(dir, old);
  fs::rename(tmp, dir);
  fs::remove_all(old, ec);
}

// One optimizer step on the batch of `step` at rate `lr`; the step's loss.
// DivergedError when the loss is not finite. `grad_norm` gets the norm before
// clipping (0 with clipping off).
double train_step(RunState& s, const TokenDataset& data, const TrainRecipe& recipe, torch::Device device, int64_t step,
                  double lr, double& grad_norm) {
  const int64_t B = recipe.batch_size, T = recipe.seq_len;
  for (auto& g : s.optimizer->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
  torch::Tensor weights;
  auto batch = data.train_batch(step, B, T, &weights).to(device);
  auto logits = s.model->forward(batch.narrow(1, 0, T));
  auto loss = lm_loss(logits, batch.narrow(1, 1, T), weights);
  s.optimizer->zero_grad();
  loss.backward();
  const double lv = loss.item<double>();
  if (!std::isfinite(lv)) {
    throw DivergedError("training diverged at step " + std::to_string(step + 1) + ": loss is " +
                        (std::isnan(lv) ? "NaN" : "infinite") + " (lr " + std::to_string(lr) + ")");
  }
  grad_norm = recipe.grad_clip > 0 ? torch::nn::utils::clip_grad_norm_(s.all_params, recipe.grad_clip) : 0.0;
  s.optimizer->step();
  if (recipe.weight_norm) apply_weight_norm(s.plan);
  return lv;
}

}  // namespace

Trainer::Trainer(ArchSpec arch, std::shared_ptr<const TokenDataset> data, std::shared_ptr<const Tokenizer> tokenizer,
                 TrainRecipe recipe, fs::path out_dir)
    : arch_(std::move(arch)),
      data_(std::move(data)),
      tokenizer_(std::move(tokenizer)),
      recipe_(std::move(recipe)),
      out_(std::move(out_dir)) {}

void Trainer::check() const {
  recipe_.validate();
  if (arch_.vocab_size < data_->file().vocab_size()) {
    throw InputError("--arch: vocab_size " + std::to_string(arch_.vocab_size) + " is smaller than the vocabulary (" +
                     std::to_string(data_->file().vocab_size()) + ") of the tokens in " +
                     data_->file().path().string());
  }
  parse_device(recipe_.device, "--device");
  const torch::ScalarType dt = parse_dtype(recipe_.dtype, "--dtype");
  if (dt != torch::kFloat32 && dt != torch::kFloat64) {
    throw InputError("--dtype: training runs in float32 or float64, got " + recipe_.dtype);
  }
  data_->train_batch(0, 1, recipe_.seq_len);  // throws, naming the data, if a split is shorter than a window
  data_->val_batch(0, 1, recipe_.seq_len);
}

fs::path Trainer::stable_dir(const fs::path& out_dir, const TrainRecipe& recipe) {
  return out_dir / ("stable-" + std::to_string(recipe.steps() * recipe.tokens_per_step()));
}

TrainResult Trainer::run(bool resume, int64_t stop_at_step) { return train(resume, {}, stop_at_step); }

TrainResult Trainer::run_from(const fs::path& stable_checkpoint) {
  if (recipe_.schedule != "wsd") {
    throw InputError("--schedule: continuing another run's stable state needs the wsd schedule, got " + recipe_.schedule);
  }
  return train(false, stable_checkpoint, -1);
}

TrainResult Trainer::train(bool resume, const fs::path& continue_from, int64_t stop_at_step) {
  using clock = std::chrono::steady_clock;
  check();
  if (recipe_.threads > 0) at::set_num_threads(recipe_.threads);
  const torch::Device device = parse_device(recipe_.device, "--device");
  const torch::ScalarType dtype = parse_dtype(recipe_.dtype, "--dtype");
  std::error_code ec;
  fs::create_directories(out_, ec);
  if (ec) throw InputError("--out " + out_.string() + ": cannot create directory: " + ec.message());
  RunState s = make_state(arch_, recipe_, device, dtype,
                          {{"arch_hash", arch_.hash()}, {"recipe", recipe_.to_json()}, {"data", data_identity(*data_)}});
  restore(s, out_, resume, continue_from, recipe_);

  const int64_t steps = recipe_.steps(), tokens_per_step = recipe_.tokens_per_step();
  const auto t0 = clock::now();
  auto elapsed = [&] { return s.prior_elapsed + std::chrono::duration<double>(clock::now() - t0).count(); };
  auto rate = [&](int64_t step_done) {  // tokens per second in this process
    const double run_s = std::chrono::duration<double>(clock::now() - t0).count();
    return run_s > 0 ? static_cast<double>((step_done - s.start_step) * tokens_per_step) / run_s : 0.0;
  };
  auto last_report = clock::now();
  double last_val = s.curve.empty() ? std::numeric_limits<double>::quiet_NaN() : s.curve.back().val_loss;
  double grad_norm = 0;
  const bool keep_stable = keep_stable_ && recipe_.schedule == "wsd";
  const int64_t stable_end = recipe_.stable_end_step();
  auto report = [&](int64_t step_done, double loss, double lr) {
    last_report = clock::now();
    if (!progress_) return;
    Progress p;
    p.step = step_done;
    p.steps = steps;
    p.tokens = step_done * tokens_per_step;
    p.total_tokens = steps * tokens_per_step;
    p.loss = loss;
    p.lr = lr;
    p.tokens_per_s = rate(step_done);
    p.eta_s = p.tokens_per_s > 0 ? static_cast<double>((steps - step_done) * tokens_per_step) / p.tokens_per_s : 0;
    p.val_loss = last_val;
    progress_(p);
  };

  int64_t step = s.start_step;
  for (; step < steps; ++step) {
    if (stop_at_step >= 0 && step >= stop_at_step) break;
    if (stop_requested()) break;  // the caller says so (common/stop.h); the checkpoint below resumes it
    if (keep_stable && step == stable_end) save_state(s, stable_dir(out_, recipe_), step, elapsed());
    const double lr = recipe_.lr_at(step);
    s.pending_sum += train_step(s, *data_, recipe_, device, step, lr, grad_norm);
    s.pending_n += 1;
    const int64_t done = step + 1;
    if (step_hook_) step_hook_(done);
    if ((recipe_.eval_interval > 0 && done % recipe_.eval_interval == 0) || done == steps) {
      last_val = validation_loss(s, *data_, recipe_, device);
      s.curve.push_back({done, done * tokens_per_step, s.pending_sum / static_cast<double>(s.pending_n), last_val, lr,
                         grad_norm, elapsed()});
      s.pending_sum = 0;
      s.pending_n = 0;
      save_state(s, out_ / "checkpoint", done, elapsed());
      report(done, s.curve.back().train_loss, lr);
    } else if (std::chrono::duration<double>(clock::now() - last_report).count() >= 2.0) {
      report(done, s.pending_sum / static_cast<double>(s.pending_n), lr);
    }
  }

  TrainResult r;
  r.steps = step;
  r.tokens = step * tokens_per_step;
  r.completed = step == steps;
  for (const auto& p : s.model->parameters()) r.params += p.numel();
  r.wall_s = elapsed();
  r.tokens_per_s = rate(step);
  r.unigram_bpb = data_->unigram_bits_per_byte();
  r.task = data_->task();
  r.val_loss = last_val;
  r.val_ppl = std::exp(last_val);
  r.val_bpb = last_val / std::log(2.0) / data_->val_bytes_per_token();
  r.curve = s.curve;
  if (!r.completed) {
    if (s.curve.empty() || s.curve.back().step != step) save_state(s, out_ / "checkpoint", step, elapsed());
    return r;
  }
  write_final(*s.model, r);
  return r;
}

// The finished run's model, tokenizer, config.json (architecture, recipe,
// data, result, version) and curve.csv.
void Trainer::write_final(HybridLMImpl& model, const TrainResult& r) const {
  const std::string model_name = "tokenizer.model";
  tokenizer_->save_files(out_, model_name);
  save_safetensors(out_ / "model.safetensors", named_tensors(model),
                   {{"format", "pt"}, {"arch_hash", arch_.hash()}, {"flashnas_commit", git_commit()}});
  const json config = {{"format", "flashnas.checkpoint/1"},
                       {"arch", arch_.to_json()},
                       {"arch_hash", arch_.hash()},
                       {"tokenizer", tokenizer_->describe(model_name)},
                       {"dtype", recipe_.dtype},
                       {"recipe", recipe_.to_json()},
                       {"data", data_identity(*data_)},
                       {"result", r.to_json()},
                       {"flashnas", {{"version", version_string()}, {"commit", git_commit()}}}};
  write_file_atomic(out_ / "config.json", config.dump(2) + "\n");
  write_file_atomic(out_ / "curve.csv", curve_csv(r.curve));
}

}  // namespace flashnas
