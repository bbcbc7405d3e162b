#include "train/recipe.h"

#include <cmath>

#include "common/error.h"

namespace flashnas {

int64_t TrainRecipe::warmup_steps() const {
  if (warmup_tokens > 0) return (warmup_tokens + tokens_per_step() - 1) / tokens_per_step();
  return std::max<int64_t>(1, static_cast<int64_t>(std::llround(warmup_fraction * static_cast<double>(steps()))));
}

int64_t TrainRecipe::stable_end_step() const {
  if (schedule != "wsd") return 0;
  const int64_t n = steps();
  const int64_t decay = std::max<int64_t>(1, static_cast<int64_t>(std::llround(decay_fraction * static_cast<double>(n))));
  return n - decay;
}

double TrainRecipe::lr_at(int64_t step) const {
  const int64_t w = warmup_steps(), n = steps();
  if (step < w) return lr * static_cast<double>(step + 1) / static_cast<double>(w);
  const double floor = lr * min_lr_ratio;
  if (schedule == "wsd") {
    const int64_t s = stable_end_step();
    if (step < s) return lr;
    // Linear from the peak down to the floor, reached at the last step.
    const double t = static_cast<double>(step - s + 1) / static_cast<double>(n - s);
    return lr + (floor - lr) * std::min(1.0, t);
  }
  const double span = std::max<int64_t>(1, n - w);
  const double progress = std::min(1.0, static_cast<double>(step - w) / span);
  return floor + (lr - floor) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

void TrainRecipe::validate() const {
  auto bad = [](const std::string& flag, const std::string& what) { throw InputError(flag + ": " + what); };
  if (tokens <= 0) bad("--tokens", "must be positive, got " + std::to_string(tokens));
  if (batch_size <= 0) bad("--batch-size", "must be positive, got " + std::to_string(batch_size));
  if (seq_len <= 0) bad("--seq-len", "must be positive, got " + std::to_string(seq_len));
  if (!(lr > 0) || !std::isfinite(lr)) bad("--lr", "must be a positive number");
  if (!(min_lr_ratio >= 0 && min_lr_ratio <= 1)) bad("--min-lr-ratio", "must be in [0, 1]");
  if (!(warmup_fraction >= 0 && warmup_fraction < 1)) bad("--warmup", "must be in [0, 1)");
  if (warmup_tokens < 0) bad("--warmup-tokens", "must be >= 0 (0: --warmup as a fraction of the steps)");
  if (schedule != "cosine" && schedule != "wsd") {
    bad("--schedule", "must be \"cosine\" or \"wsd\" (warmup-stable-decay), got \"" + schedule + "\"");
  }
  if (!(decay_fraction > 0 && decay_fraction <= 1)) bad("--decay", "must be in (0, 1]");
  if (schedule == "wsd" && warmup_steps() > stable_end_step()) {
    bad("--warmup-tokens", "the warmup (" + std::to_string(warmup_steps()) + " steps) must end before the decay begins (step " +
                               std::to_string(stable_end_step()) + " of " + std::to_string(steps()) + ")");
  }
  if (!(weight_decay >= 0)) bad("--weight-decay", "must be >= 0");
  if (!(grad_clip >= 0)) bad("--grad-clip", "must be >= 0 (0 disables clipping)");
  if (eval_interval < 0) bad("--eval-interval", "must be >= 0");
  if (eval_batches <= 0) bad("--eval-batches", "must be positive");
  if (!(val_fraction > 0 && val_fraction < 1)) bad("--val-fraction", "must be between 0 and 1 (exclusive)");
  if (threads < 0) bad("--threads", "must be >= 0");
}

json TrainRecipe::to_json() const {
  return json{{"tokens", tokens},
              {"batch_size", batch_size},
              {"seq_len", seq_len},
              {"lr", lr},
              {"min_lr_ratio", min_lr_ratio},
              {"warmup_fraction", warmup_fraction},
              {"warmup_tokens", warmup_tokens},
              {"decay_fraction", decay_fraction},
              {"weight_decay", weight_decay},
              {"grad_clip", grad_clip},
              {"weight_norm", weight_norm},
              {"seed", seed},
              {"eval_interval", eval_interval},
              {"eval_batches", eval_batches},
              {"val_fraction", val_fraction},
              {"device", device},
              {"dtype", dtype},
              {"threads", threads},
              {"optimizer", "adamw"},
              {"schedule", schedule}};
}

TrainRecipe TrainRecipe::from_json(const json& j, const std::string& source) {
  FieldReader f(j, source, "recipe");
  TrainRecipe r;
  r.tokens = f.positive("tokens");
  r.batch_size = f.positive("batch_size");
  r.seq_len = f.positive("seq_len");
  r.lr = f.positive_number("lr");
  r.min_lr_ratio = j.at("min_lr_ratio").get<double>();
  f.raw("min_lr_ratio");
  r.warmup_fraction = j.at("warmup_fraction").get<double>();
  f.raw("warmup_fraction");
  // Recipes written before the wsd schedule lack these fields and name the
  // cosine schedule in words.
  if (f.has("warmup_tokens")) r.warmup_tokens = f.non_negative("warmup_tokens");
  if (f.has("decay_fraction")) r.decay_fraction = f.positive_number("decay_fraction");
  r.weight_decay = j.at("weight_decay").get<double>();
  f.raw("weight_decay");
  r.grad_clip = j.at("grad_clip").get<double>();
  f.raw("grad_clip");
  r.weight_norm = f.boolean("weight_norm");
  r.seed = j.at("seed").get<uint64_t>();
  f.raw("seed");
  r.eval_interval = f.non_negative("eval_interval");
  r.eval_batches = f.positive("eval_batches");
  r.val_fraction = f.positive_number("val_fraction");
  r.device = f.string("device");
  r.dtype = f.string("dtype");
  r.threads = static_cast<int>(f.non_negative("threads"));
  f.string("optimizer", "adamw");
  r.schedule = f.string("schedule", "cosine");
  if (r.schedule == "linear warmup, cosine to min_lr_ratio * lr") r.schedule = "cosine";
  f.finish();
  r.validate();
  return r;
}

}  // namespace flashnas
