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
  const fs::path ckpt = out_ / "checkpoint", ckpt_old = out_ / "checkpoint.old";
  std::error_code ec;
  fs::create_directories(out_, ec);
  if (ec) throw InputError("--out " + out_.string() + ": cannot create directory: " + ec.message());

  torch::manual_seed(recipe_.seed);
  HybridLM model(arch_);
  model->to(device, dtype);
  const WeightNormPlan plan = weight_norm_plan(*model);
  if (recipe_.weight_norm) apply_weight_norm(plan);  // start on the unit sphere

  // AdamW groups: decay only on matrices that are neither weight-normalised nor embeddings.
  std::set<const void*> normed;
  for (const auto& t : plan.rows) normed.insert(t.unsafeGetTensorImpl());
  for (const auto& t : plan.cols) normed.insert(t.unsafeGetTensorImpl());
  std::vector<torch::Tensor> decay, no_decay, all_params;
  for (const auto& p : model->named_parameters()) {
    const bool is_normed = recipe_.weight_norm && normed.count(p.value().unsafeGetTensorImpl());
    const bool is_embedding = p.key() == "embed_tokens.weight" || p.key() == "meta_tokens";
    (p.value().dim() >= 2 && !is_normed && !is_embedding ? decay : no_decay).push_back(p.value());
    all_params.push_back(p.value());
  }
  auto opts = [&](double wd) { return torch::optim::AdamWOptions(recipe_.lr).betas({0.9, 0.95}).eps(1e-8).weight_decay(wd); };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(opts(recipe_.weight_decay)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(opts(0.0)));
  torch::optim::AdamW optimizer(groups, opts(0.0));

  const json identity = {{"arch_hash", arch_.hash()}, {"recipe", recipe_.to_json()}, {"data", data_identity(*data_)}};
  int64_t start_step = 0;
  double pending_sum = 0;
  int64_t pending_n = 0;
  std::vector<CurvePoint> curve;
  double prior_elapsed = 0;
  if (!fs::exists(ckpt, ec) && fs::exists(ckpt_old, ec)) fs::rename(ckpt_old, ckpt, ec);  // interrupted swap
  // Loads a checkpoint folder's state; `other_length`: it may come from a wsd
  // run planned for another number of tokens, up to its stable end.
  auto load_state = [&](const fs::path& dir, bool other_length, const std::string& flag) {
    const json state = load_json_file(dir / "state.json");
    json want = identity, have = state.at("identity");
    for (json* j : {&want, &have}) {
      (*j)["recipe"].erase("threads");
      if (other_length) (*j)["recipe"].erase("tokens");
    }
    if (want != have) {
      throw InputError(flag + ": the checkpoint in " + dir.string() +
                       " was made with another architecture, recipe or data; differing: " +
                       json::diff(have, want).dump());
    }
    start_step = state.at("step").get<int64_t>();
    if (other_length && start_step > recipe_.stable_end_step()) {
      throw InputError(flag + ": the checkpoint in " + dir.string() + " is at step " + std::to_string(start_step) +
                       ", past this run's stable end (step " + std::to_string(recipe_.stable_end_step()) +
                       "); it can only be continued by a longer run");
    }
    load_into(*model, load_safetensors(dir / "model.safetensors"), (dir / "model.safetensors").string());
    torch::load(optimizer, (dir / "optimizer.pt").string());
    pending_sum = state.at("pending_loss_sum").get<double>();
    pending_n = state.at("pending_steps").get<int64_t>();
    curve = curve_from_json(state.at("curve"));
    prior_elapsed = state.at("elapsed_s").get<double>();
  };
  if (resume) {
    if (!fs::exists(ckpt / "state.json", ec)) {
      throw InputError("--resume: no checkpoint in " + out_.string() + " (expected " + (ckpt / "state.json").string() + ")");
    }
    load_state(ckpt, false, "--resume");
  } else if (fs::exists(ckpt, ec)) {
    throw InputError("--out " + out_.string() +
                     " already holds a training checkpoint; pass --resume to continue it or choose another --out");
  } else if (!continue_from.empty()) {
    const fs::path old = continue_from.string() + ".old";
    if (!fs::exists(continue_from, ec) && fs::exists(old, ec)) fs::rename(old, continue_from, ec);  // interrupted swap
    if (!fs::exists(continue_from / "state.json", ec)) {
      throw InputError("continue: no stable checkpoint in " + continue_from.string());
    }
    load_state(continue_from, true, "continue");
  }

  const int64_t steps = recipe_.steps(), B = recipe_.batch_size, T = recipe_.seq_len;
  const auto t0 = clock::now();
  auto elapsed = [&] { return prior_elapsed + std::chrono::duration<double>(clock::now() - t0).count(); };
  auto last_report = clock::now();
  double last_val = curve.empty() ? std::numeric_limits<double>::quiet_NaN() : curve.back().val_loss;
  double grad_norm = 0;

  auto evaluate = [&] {
    torch::NoGradGuard no_grad;
    LossSum sum;
    for (int64_t i = 0; i < recipe_.eval_batches; ++i) {
      torch::Tensor w;
      auto batch = data_->val_batch(i, B, T, &w).to(device);
      auto logits = model->forward(batch.narrow(1, 0, T));
      const LossSum s = lm_loss_sum(logits, batch.narrow(1, 1, T), w);
      sum.nats += s.nats;
      sum.count += s.count;
    }
    return sum.nats / std::max(1.0, sum.count);
  };
  auto save_to = [&](const fs::path& dir, int64_t step_done) {
    const fs::path tmp = dir.string() + ".tmp", old = dir.string() + ".old";
    fs::remove_all(tmp, ec);
    try {
      fs::create_directories(tmp);
      save_safetensors(tmp / "model.safetensors", named_tensors(*model));
      // Serialised in memory and written by write_file_atomic: LibTorch's own
      // file writer throws from a destructor when the disk is full (abort).
      std::ostringstream opt;
      torch::save(optimizer, opt);
      write_file_atomic(tmp / "optimizer.pt", opt.str());
      const json state = {{"identity", identity},         {"step", step_done},
                          {"pending_loss_sum", pending_sum}, {"pending_steps", pending_n},
                          {"curve", curve_json(curve)},    {"elapsed_s", elapsed()}};
      write_file_atomic(tmp / "state.json", state.dump(1));
    } catch (const std::exception& e) {
      fs::remove_all(tmp, ec);
      throw IoError(dir.string() + ": cannot write the checkpoint of step " + std::to_string(step_done) + " (" +
                  e.what() + "); the previous checkpoint, if any, is intact");
    }
    // Swap: the old checkpoint stays until the new one is complete.
    if (fs::exists(dir, ec)) fs::rename(dir, old);
    fs::rename(tmp, dir);
    fs::remove_all(old, ec);
  };
  auto save_checkpoint = [&](int64_t step_done) { save_to(ckpt, step_done); };
  const bool keep_stable = keep_stable_ && recipe_.schedule == "wsd";
  const int64_t stable_end = recipe_.stable_end_step();
  auto report = [&](int64_t step_done, double loss, double lr) {
    if (!progress_) return;
    Progress p;
    p.step = step_done;
    p.steps = steps;
    p.tokens = step_done * B * T;
    p.total_tokens = steps * B * T;
    p.loss = loss;
    p.lr = lr;
    const double run_s = std::chrono::duration<double>(clock::now() - t0).count();
    p.tokens_per_s = run_s > 0 ? static_cast<double>((step_done - start_step) * B * T) / run_s : 0;
    p.eta_s = p.tokens_per_s > 0 ? static_cast<double>((steps - step_done) * B * T) / p.tokens_per_s : 0;
    p.val_loss = last_val;
    progress_(p);
  };

  int64_t step = start_step;
  for (; step < steps; ++step) {
    if (stop_at_step >= 0 && step >= stop_at_step) break;
    if (stop_requested()) break;  // the caller says so (common/stop.h); the checkpoint below resumes it
    if (keep_stable && step == stable_end) save_to(stable_dir(out_, recipe_), step);
    const double lr = recipe_.lr_at(step);
    for (auto& g : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    torch::Tensor weights;
    auto batch = data_->train_batch(step, B, T, &weights).to(device);
    auto logits = model->forward(batch.narrow(1, 0, T));
    auto loss = lm_loss(logits, batch.narrow(1, 1, T), weights);
    optimizer.zero_grad();
    loss.backward();
    const double lv = loss.item<double>();
    if (!std::isfinite(lv)) {
      throw DivergedError("training diverged at step " + std::to_string(step + 1) + ": loss is " +
                          (std::isnan(lv) ? "NaN" : "infinite") + " (lr " + std::to_string(lr) + ")");
    }
    grad_norm = recipe_.grad_clip > 0
                    ? torch::nn::utils::clip_grad_norm_(all_params, recipe_.grad_clip)
                    : 0.0;
    optimizer.step();
    if (recipe_.weight_norm) apply_weight_norm(plan);
    pending_sum += lv;
    pending_n += 1;
    const int64_t done = step + 1;
    if (step_hook_) step_hook_(done);
    const bool eval_now = (recipe_.eval_interval > 0 && done % recipe_.eval_interval == 0) || done == steps;
    if (eval_now) {
      last_val = evaluate();
      curve.push_back({done, done * B * T, pending_sum / static_cast<double>(pending_n), last_val, lr, grad_norm,
                       elapsed()});
      pending_sum = 0;
      pending_n = 0;
      save_checkpoint(done);
      report(done, curve.back().train_loss, lr);
      last_report = clock::now();
    } else if (std::chrono::duration<double>(clock::now() - last_report).count() >= 2.0) {
      report(done, pending_sum / static_cast<double>(pending_n), lr);
      last_report = clock::now();
    }
  }

  TrainResult r;
  r.steps = step;
  r.tokens = step * B * T;
  r.completed = step == steps;
  for (const auto& p : model->parameters()) r.params += p.numel();
  r.wall_s = elapsed();
  const double run_s = std::chrono::duration<double>(clock::now() - t0).count();
  r.tokens_per_s = run_s > 0 ? static_cast<double>((step - start_step) * B * T) / run_s : 0;
  r.unigram_bpb = data_->unigram_bits_per_byte();
  r.task = data_->task();
  r.val_loss = last_val;
  r.val_ppl = std::exp(last_val);
  r.val_bpb = last_val / std::log(2.0) / data_->val_bytes_per_token();
  r.curve = curve;
  if (!r.completed) {
    if (curve.empty() || curve.back().step != step) save_checkpoint(step);
    return r;
  }
  // Final artifacts.
  const std::string model_name = "tokenizer.model";
  tokenizer_->save_files(out_, model_name);
  save_safetensors(out_ / "model.safetensors", named_tensors(*model),
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
  write_file_atomic(out_ / "curve.csv", curve_csv(curve));
  return r;
}

}  // namespace flashnas
