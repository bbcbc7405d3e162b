#include "train/train_result.h"

#include <cmath>
#include <cstdio>

#include "common/format.h"

namespace flashnas {

json TrainResult::to_json() const {
  auto num = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
  return json{{"val_loss", num(val_loss)},     {"val_ppl", num(val_ppl)}, {"val_bpb", num(val_bpb)},
              {"unigram_bpb", num(unigram_bpb)}, {"tokens", tokens},      {"steps", steps},
              {"params", params},              {"tokens_per_s", tokens_per_s}, {"wall_s", wall_s},
              {"completed", completed},      {"task", task}};
}

std::string TrainResult::summary_text() const {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "%s: %s tokens in %s (%s tok/s), %s params\n"
                "validation%s: loss %.4f, perplexity %.3f, %.4f bits/byte (unigram baseline %.4f bits/byte)\n",
                completed ? "done" : "stopped", format_count(double(tokens)).c_str(), format_duration(wall_s).c_str(),
                format_count(tokens_per_s).c_str(), format_count(double(params)).c_str(), task ? " (completion tokens)" : "", val_loss, val_ppl, val_bpb,
                unigram_bpb);
  return buf;
}

}  // namespace flashnas
