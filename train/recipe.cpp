#include "train/recipe.h"

#include <cmath>
#include <limits>

#include "common/error.h"
#include "common/threads.h"

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

void TrainRecipe::validate(const FieldReader* fields) const {
  auto bad = [fields](const std::string& flag, const std::string& field, const std::string& what) {
    if (fields) fields->fail(field, what);
    throw InputError(flag + ": " + what);
  };
  if (tokens <= 0) bad("--tokens", "tokens", "must be positive, got " + std::to_string(tokens));
  if (batch_size <= 0) bad("--batch-size", "batch_size", "must be positive, got " + std::to_string(batch_size));
  if (seq_len <= 0) bad("--seq-len", "seq_len", "must be positive, got " + std::to_string(seq_len));
  if (!(lr > 0) || !std::isfinite(lr)) bad("--lr", "lr", "must be a positive finite number");
  if (!(min_lr_ratio >= 0 && min_lr_ratio <= 1)) bad("--min-lr-ratio", "min_lr_ratio", "must be in [0, 1]");
  if (!(warmup_fraction >= 0 && warmup_fraction < 1)) bad("--warmup", "warmup_fraction", "must be in [0, 1)");
  if (warmup_tokens < 0) {
    bad("--warmup-tokens", "warmup_tokens", "must be >= 0 (0: the warmup is a fraction of the steps)");
  }
  if (schedule != "cosine" && schedule != "wsd") {
    bad("--schedule", "schedule", "must be \"cosine\" or \"wsd\" (warmup-stable-decay), got \"" + schedule + "\"");
  }
  if (!(decay_fraction > 0 && decay_fraction <= 1)) bad("--decay", "decay_fraction", "must be in (0, 1]");
  if (schedule == "wsd" && warmup_steps() > stable_end_step()) {
    bad("--warmup-tokens", "warmup_tokens",
        "the warmup (" + std::to_string(warmup_steps()) + " steps) must end before the decay begins (step " +
            std::to_string(stable_end_step()) + " of " + std::to_string(steps()) + ")");
  }
  if (!(weight_decay >= 0) || !std::isfinite(weight_decay)) bad("--weight-decay", "weight_decay", "must be a finite number >= 0");
  if (!(grad_clip >= 0) || !std::isfinite(grad_clip)) {
    bad("--grad-clip", "grad_clip", "must be a finite number >= 0 (0 disables clipping)");
  }
  if (eval_interval < 0) bad("--eval-interval", "eval_interval", "must be >= 0");
  if (eval_batches <= 0) bad("--eval-batches", "eval_batches", "must be positive");
  if (!(val_fraction > 0 && val_fraction < 1)) bad("--val-fraction", "val_fraction", "must be between 0 and 1 (exclusive)");
  if (const std::string p = threads_problem(threads); !p.empty()) bad("--threads", "threads", p);
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

TrainRecipe TrainRecipe::from_json(const json& j, const std::string& source, const std::string& where) {
  FieldReader f(j, source, where);
  TrainRecipe r;
  constexpr double kInf = std::numeric_limits<double>::infinity();
  r.tokens = f.positive("tokens");
  r.batch_size = f.positive("batch_size");
  r.seq_len = f.positive("seq_len");
  r.lr = f.positive_number("lr");
  r.min_lr_ratio = f.number_in("min_lr_ratio", 0, 1);
  r.warmup_fraction = f.number_in("warmup_fraction", 0, 1);
  // Recipes written before the wsd schedule lack these fields and name the
  // cosine schedule in words.
  if (f.has("warmup_tokens")) r.warmup_tokens = f.non_negative("warmup_tokens");
  if (f.has("decay_fraction")) r.decay_fraction = f.number_in("decay_fraction", 0, 1);
  r.weight_decay = f.number_in("weight_decay", 0, kInf);
  r.grad_clip = f.number_in("grad_clip", 0, kInf);
  r.weight_norm = f.boolean("weight_norm");
  if (!f.raw("seed").is_number_unsigned() && !(f.raw("seed").is_number_integer() && f.raw("seed").get<int64_t>() >= 0)) {
    f.fail("seed", "must be an integer >= 0, got " + describe_value(f.raw("seed")));
  }
  r.seed = f.raw("seed").get<uint64_t>();
  r.eval_interval = f.non_negative("eval_interval");
  r.eval_batches = f.positive("eval_batches");
  r.val_fraction = f.number_in("val_fraction", 0, 1);
  r.device = f.string("device");
  r.dtype = f.string("dtype");
  r.threads = int(f.integer_in("threads", 0, available_cpus()));
  f.string("optimizer", "adamw");
  r.schedule = f.string("schedule", "cosine");
  if (r.schedule == "linear warmup, cosine to min_lr_ratio * lr") r.schedule = "cosine";
  f.finish();
  r.validate(&f);
  return r;
}

}  // namespace flashnas
