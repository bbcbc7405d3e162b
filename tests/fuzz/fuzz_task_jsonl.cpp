// JSONL task data (train/task_data.h): prompt/completion and chat records,
// tool calls included, read strictly and with bad records skipped; every
// accepted record is then tokenized the way `data prepare` does.
#include "tests/fuzz/fuzz.h"
#include "train/task_data.h"
#include "train/tokenizer.h"

FLASHNAS_FUZZ_TARGET(task_jsonl) {
  const auto path = flashnas::fuzz::write_input("fuzz.jsonl", data, size);
  static const auto bytes = flashnas::make_byte_tokenizer();
  for (const bool skip_bad : {false, true}) {
    flashnas::fuzz::guard("task_jsonl", [&] {
      const auto read = flashnas::read_task_jsonl(path, skip_bad);
      (void)read.counts().to_json();
      for (const auto& d : read.records) (void)flashnas::encode_task_record(*bytes, d);
    });
  }
  return 0;
}
