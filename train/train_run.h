// `flashnas train` as a library call: set-up (recipe, device, dtype,
// ArchSpec, training data) and then one short-training run into a run folder.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "train/trainer.h"

namespace flashnas {

struct TrainRunRequest {
  std::string arch;       // ArchSpec JSON file
  std::string data;       // token file, or UTF-8 text (a file or folder) tokenized into `out`
  std::string out;        // run folder
  std::string tokenizer;  // SentencePiece model for text `data` ("" = byte-level)
  TrainRecipe recipe;
  // Seed of the train/validation split; unset: recipe.seed. Fixing it while
  // recipe.seed varies repeats a run with another initialisation and batch
  // order on the same held-out documents, as `flashnas compare` does.
  std::optional<uint64_t> split_seed;
  bool resume = false;
  int64_t stop_at_step = -1;  // stop here with a resumable checkpoint (-1: run to the end)
};

// Runs the request. `log` gets one line describing the run once it is set up;
// `on_progress` (optional) the trainer's progress. Bad input found during
// set-up leaves nothing behind: a run folder this call created is removed.
// Stopped (with how to resume) when SIGINT/SIGTERM ended training early.
TrainResult train_run(const TrainRunRequest& req, const std::function<void(const std::string&)>& log,
                      const std::function<void(const Progress&)>& on_progress = {});

}  // namespace flashnas
