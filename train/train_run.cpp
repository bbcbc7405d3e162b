#include "train/train_run.h"

#include <filesystem>

#include "common/device.h"
#include "common/error.h"
#include "common/fault.h"
#include "common/format.h"
#include "common/stop.h"
#include "supernet/arch_spec.h"
#include "train/training_data.h"

namespace flashnas {
namespace fs = std::filesystem;
namespace {

// Everything up to `started = true` is set-up; the caller removes a run folder
// it created when set-up fails.
TrainResult run(const TrainRunRequest& req, bool& started, const std::function<void(const std::string&)>& log,
                const std::function<void(const Progress&)>& on_progress) {
  TrainRecipe recipe = req.recipe;
  recipe.validate();
  parse_device(recipe.device, "--device");
  parse_dtype(recipe.dtype, "--dtype");
  const ArchSpec arch = ArchSpec::load(req.arch);
  const TrainingData data =
      training_data_from(req.data, req.tokenizer, req.out, req.resume, recipe.val_fraction,
                         req.split_seed.value_or(recipe.seed));
  const auto& ds = data.dataset;
  log("train: " + (arch.name.empty() ? req.arch : arch.name) + " (" + arch.short_hash() + ") on " +
      data.file->path().string() + ": " + format_count(double(ds->train().tokens)) + " train / " +
      format_count(double(ds->val().tokens)) + " val tokens; " + std::to_string(recipe.steps()) + " steps of " +
      std::to_string(recipe.batch_size) + " x " + std::to_string(recipe.seq_len) + " tokens");
  Trainer trainer(arch, ds, data.tokenizer, recipe, req.out);
  trainer.check();
  if (on_progress) trainer.on_progress(on_progress);
  Fault fault = Fault::from_env();
  if (fault.n > 0) trainer.on_step([&fault](int64_t) { fault.hit("train-step"); });
  started = true;
  TrainResult res = trainer.run(req.resume, req.stop_at_step);
  throw_if_stopped("train: stopped after step " + std::to_string(res.steps) + " of " + std::to_string(recipe.steps()) +
                   "; its checkpoint is in " + req.out + ": add --resume to the same command to continue");
  return res;
}

}  // namespace

TrainResult train_run(const TrainRunRequest& req, const std::function<void(const std::string&)>& log,
                      const std::function<void(const Progress&)>& on_progress) {
  const bool out_existed = fs::exists(req.out);
  bool started = false;
  try {
    return run(req, started, log, on_progress);
  } catch (...) {
    if (!out_existed && !started) {
      std::error_code ec;
      fs::remove_all(req.out, ec);
    }
    throw;
  }
}

}  // namespace flashnas
