// Task metrics of a model on task records (train/task_data.h): completion
// loss, bits per completion byte and token accuracy, and on records
// completed greedily the exact-match rate, where the reference completion is
// JSON the rates of valid JSON and of JSON equal to the reference after
// parsing, and where it makes tool calls the per-call metrics (function
// name, whole call, argument fields, valid call JSON).
//
// Loss: each record is scored from a fresh state (prompt and completion
// tokens, right-padded in batches; every mixer is causal, so padding after a
// record cannot change its scores); only completion targets count.
// Generation: the prompt's tokens are prefilled, then greedy steps until the
// decoded text holds the end marker <|end|> or max_new tokens are made
// (reference completion tokens + 32 unless set). Exact match: the text up to
// and including the first end marker equals the reference completion with
// its end marker (a model that does not stop does not match).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/json_io.h"
#include "supernet/hybrid_lm.h"
#include "train/token_file.h"
#include "train/tokenizer.h"

namespace flashnas {

struct TaskRecord {
  std::vector<int64_t> prompt, completion;  // token ids; the completion ends with the end marker's tokens
  int64_t completion_bytes = 0;             // UTF-8 bytes of the completion, end marker included
};

// Records d of a task token file (InputError naming it for a text file).
std::vector<TaskRecord> task_records(const TokenFile& f, const std::vector<int64_t>& docs);
// Records of a .jsonl file, tokenized with `tokenizer` (bad records refused, as data prepare does).
std::vector<TaskRecord> task_records_from_jsonl(const std::filesystem::path& path, const Tokenizer& tokenizer);

struct TaskEvalOptions {
  int64_t batch = 8;              // records per forward pass (loss)
  int64_t generate_records = -1;  // records completed greedily: the first this many (-1: all, 0: none)
  int64_t max_new = 0;            // greedy tokens per record (0: reference tokens + 32)
};

struct TaskMismatch {
  std::string prompt_tail, expected, got;  // decoded text (prompt: its last 120 bytes)
};

struct TaskEvalResult {
  int64_t records = 0, completion_tokens = 0, completion_bytes = 0;
  double completion_loss = 0;  // nats per completion token
  double completion_bpb = 0;   // bits per completion byte
  // Teacher-forced: the share of completion tokens that are the model's most
  // likely next token (a graded metric: well above 0 long before any
  // completion matches exactly).
  double token_accuracy = 0;
  // Tool calls (records whose reference completion makes them; see
  // CompletionCheck): reference calls, generated call lines, and per
  // reference call (by position) the name right, the whole call right, and
  // over the reference arguments' fields those with the right value.
  int64_t tool_records = 0, calls = 0, calls_generated = 0, call_json_valid = 0, call_name_correct = 0, call_exact = 0;
  int64_t arg_fields = 0, arg_fields_correct = 0;
  int64_t generated = 0, exact = 0, json_records = 0, json_valid = 0, json_equal = 0;
  double seconds = 0;
  std::vector<TaskMismatch> mismatches;  // the first 3 records that did not match exactly
  double exact_rate() const { return generated ? double(exact) / double(generated) : NAN; }
  double json_valid_rate() const { return json_records ? double(json_valid) / double(json_records) : NAN; }
  double json_equal_rate() const { return json_records ? double(json_equal) / double(json_records) : NAN; }
  double call_name_rate() const { return calls ? double(call_name_correct) / double(calls) : NAN; }
  double call_exact_rate() const { return calls ? double(call_exact) / double(calls) : NAN; }
  double call_valid_rate() const { return calls_generated ? double(call_json_valid) / double(calls_generated) : NAN; }
  double arg_field_rate() const { return arg_fields ? double(arg_fields_correct) / double(arg_fields) : NAN; }
  json to_json() const;
  // "completion loss 0.41 (0.59 bits/byte); exact match 12/40 (30%); JSON valid 38/40, equal 12/40".
  std::string summary() const;
};

// progress(done, total) counts records scored, then records generated.
TaskEvalResult evaluate_task(HybridLM model, const Tokenizer& tokenizer, const std::vector<TaskRecord>& records,
                             const TaskEvalOptions& o, const std::function<void(const char*, int64_t, int64_t)>& progress = {});

// Exact-match and JSON checks of one generated completion against the
// reference (both as text; the reference without its end marker).
struct CompletionCheck {
  bool exact = false, reference_is_json = false, valid_json = false, equal_json = false;
  // Tool calls: the lines that begin with <|tool_call|> (train/task_data.h),
  // each {"name", "arguments"}; the generated text up to its end marker.
  // Reference call i is compared with generated call i.
  int64_t ref_calls = 0, got_calls = 0, got_valid = 0, names_correct = 0, calls_exact = 0;
  int64_t fields = 0, fields_correct = 0;  // the reference calls' argument fields, and those the generated call matches
};
CompletionCheck check_completion(const std::string& generated, const std::string& reference);

}  // namespace flashnas
