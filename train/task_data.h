// Task data: the user's agent calls as JSONL records, rendered to text whose
// tail is the completion the model must learn to produce.
//
// Records (one JSON object per line; blank lines are ignored):
//   {"prompt": "...", "completion": "..."}
//       rendered  <prompt><completion><|end|>
//   {"messages": [{"role": "system"|"user"|"assistant"|"tool", "content": "..."}, ...]}
//       template flashnas-chat/2: every message but the last is rendered
//         <|role|>\n<text><|end|>\n
//       then the prompt ends with "<|assistant|>\n", and the last message,
//       which must be the assistant's, is the completion: <text><|end|>.
//       A message's text is its content; an assistant message may carry
//       "tool_calls" (OpenAI's [{"type": "function", "function": {"name",
//       "arguments"}}], or [{"name", "arguments"}]; arguments a JSON object
//       or a string holding one; "content" may then be null or absent), each
//       rendered on its own line after the content:
//         <|tool_call|>{"name": "<name>", "arguments": <arguments as compact JSON>}
//       A tool message's "tool_call_id" and "name" are accepted and not
//       rendered. Records without tool calls render exactly as in
//       flashnas-chat/1.
// The role markers are plain text, so the byte tokenizer and SentencePiece
// see the same rendering. The completion part (completion text plus the end
// marker) is what training's loss counts and evaluation generates; greedy
// generation stops at the end marker. Neither field may hold the end marker.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/json_io.h"
#include "train/corpus.h"
#include "train/tokenizer.h"

namespace flashnas {

inline constexpr std::string_view kTaskEnd = "<|end|>";
inline constexpr std::string_view kChatTemplate = "flashnas-chat/2";
inline constexpr std::string_view kToolCall = "<|tool_call|>";

// Task records read from a .jsonl file, counted.
struct TaskCounts {
  int64_t records = 0, prompt_completion = 0, chat = 0, with_tool_calls = 0, skipped = 0;
  // {"format": "jsonl", "template", "end", "records", ...}: what a task token
  // file's meta records under "task".
  json to_json() const;
};

struct TaskRead {
  std::vector<Document> records;  // text = prompt + completion + end marker; completion_at set
  int64_t skipped = 0;            // bad records skipped (skip_bad)
  std::vector<std::string> skipped_reasons;  // the first few, "FILE:LINE: field ...: why"
  int64_t prompt_completion = 0, chat = 0;   // records of each form
  int64_t tool_calls = 0;                    // records with tool calls (in the prompt or the completion)
  TaskCounts counts() const;
};

// True for a file whose name ends in .jsonl (what `data prepare` reads as task data).
bool is_jsonl_path(const std::filesystem::path& path);

// Renders one parsed record; InputError "<where>: field <f>: <why>" for a bad one.
Document render_task_record(const json& record, const std::string& where);

// Reads every record of a JSONL file. A bad record (a line that is not JSON,
// invalid UTF-8, missing fields, wrong types, an empty completion) is an
// InputError naming the file, line and field, unless `skip_bad`, which skips
// it and counts it. InputError when no record is left.
TaskRead read_task_jsonl(const std::filesystem::path& path, bool skip_bad);

// A record's prompt and completion, each tokenized alone (so the boundary
// falls between tokens with every tokenizer); d.completion_at must be set.
struct TaskTokens {
  std::vector<int32_t> prompt, completion;
};
TaskTokens encode_task_record(const Tokenizer& tokenizer, const Document& d);

// The completion text of a record's completion part, without the end marker
// (the end marker is removed only where it ends the text).
std::string strip_task_end(std::string_view completion);

}  // namespace flashnas
