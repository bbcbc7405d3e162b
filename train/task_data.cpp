#include "train/task_data.h"

#include <fstream>

#include "common/error.h"

namespace flashnas {
namespace fs = std::filesystem;

namespace {

const json& field(const json& record, const char* name, const std::string& where) {
  if (!record.contains(name)) throw InputError(where + ": field \"" + name + "\": missing");
  return record.at(name);
}

std::string string_field(const json& v, const std::string& name, const std::string& where) {
  if (!v.is_string()) {
    throw InputError(where + ": field \"" + name + "\": must be a string, got " + std::string(v.type_name()));
  }
  std::string s = v.get<std::string>();
  if (s.find(kTaskEnd) != std::string::npos) {
    throw InputError(where + ": field \"" + name + "\": holds the end marker " + std::string(kTaskEnd) +
                     ", which flashnas adds after every completion");
  }
  return s;
}

bool is_role(const std::string& r) { return r == "system" || r == "user" || r == "assistant" || r == "tool"; }

// An assistant message's tool calls, rendered one per line after its text:
// <|tool_call|>{"name": ..., "arguments": {...}}. Entries are OpenAI's
// {"type": "function", "function": {"name", "arguments"}} or the flat
// {"name", "arguments"}; arguments are a JSON object or a string holding one.
std::string render_tool_calls(const json& calls, const std::string& at, const std::string& where) {
  if (!calls.is_array() || calls.empty()) {
    throw InputError(where + ": field \"" + at + "\": must be a non-empty array of {\"function\": {\"name\", \"arguments\"}}");
  }
  std::string out;
  for (size_t j = 0; j < calls.size(); ++j) {
    const std::string cat = at + "[" + std::to_string(j) + "]";
    const json& c = calls[j];
    if (!c.is_object()) throw InputError(where + ": field \"" + cat + "\": must be an object");
    const bool nested = c.contains("function");
    const json& f = nested ? c.at("function") : c;
    const std::string fat = nested ? cat + ".function" : cat;
    if (!f.is_object()) throw InputError(where + ": field \"" + fat + "\": must be an object with \"name\" and \"arguments\"");
    const std::string name = string_field(field(f, "name", where + ": " + fat), fat + ".name", where);
    if (name.empty()) throw InputError(where + ": field \"" + fat + ".name\": empty");
    json args = json::object();
    if (f.contains("arguments")) {
      args = f.at("arguments");
      if (args.is_string()) {
        const std::string text = string_field(args, fat + ".arguments", where);
        args = json::parse(text, nullptr, false);
        if (args.is_discarded()) throw InputError(where + ": field \"" + fat + ".arguments\": not JSON: " + text.substr(0, 60));
      }
      if (!args.is_object()) {
        throw InputError(where + ": field \"" + fat + ".arguments\": must be a JSON object (or a string holding one), got " +
                         std::string(args.type_name()));
      }
    }
    out += std::string(j ? "\n" : "") + std::string(kToolCall) + "{\"name\": " + json(name).dump() + ", \"arguments\": " + args.dump() + "}";
  }
  return out;
}

// The text of message `m` (its content, and an assistant's tool calls).
std::string message_text(const json& m, const std::string& role, const std::string& at, const std::string& where) {
  const bool calls = m.contains("tool_calls") && !m.at("tool_calls").is_null();
  if (calls && role != "assistant") {
    throw InputError(where + ": field \"" + at + ".tool_calls\": only an assistant message makes tool calls, this one is \"" + role + "\"");
  }
  std::string content;
  if (!calls || (m.contains("content") && !m.at("content").is_null())) {
    content = string_field(field(m, "content", where + ": " + at), at + ".content", where);
  }
  if (content.find(kToolCall) != std::string::npos) {
    throw InputError(where + ": field \"" + at + ".content\": holds the marker " + std::string(kToolCall) +
                     ", which flashnas writes before each tool call");
  }
  if (calls) {
    const std::string rendered = render_tool_calls(m.at("tool_calls"), at + ".tool_calls", where);
    content += (content.empty() ? "" : "\n") + rendered;
  }
  return content;
}

}  // namespace

TaskCounts TaskRead::counts() const {
  return TaskCounts{int64_t(records.size()), prompt_completion, chat, tool_calls, skipped};
}

json TaskCounts::to_json() const {
  return json{{"format", "jsonl"},
              {"template", std::string(kChatTemplate)},
              {"end", std::string(kTaskEnd)},
              {"records", records},
              {"prompt_completion", prompt_completion},
              {"chat", chat},
              {"with_tool_calls", with_tool_calls},
              {"skipped", skipped}};
}

bool is_jsonl_path(const fs::path& path) { return path.extension() == ".jsonl"; }

Document render_task_record(const json& record, const std::string& where) {
  if (!record.is_object()) {
    throw InputError(where + ": a record must be a JSON object with \"prompt\" and \"completion\", or with \"messages\"; got " +
                     std::string(record.type_name()));
  }
  const bool pc = record.contains("prompt") || record.contains("completion");
  const bool chat = record.contains("messages");
  if (pc && chat) throw InputError(where + ": a record has \"prompt\"/\"completion\" or \"messages\", not both");
  if (!pc && !chat) throw InputError(where + ": field \"completion\": missing (a record has \"prompt\" and \"completion\", or \"messages\")");
  Document d;
  d.source = where;
  std::string completion;
  if (pc) {
    d.text = string_field(field(record, "prompt", where), "prompt", where);
    if (d.text.empty()) throw InputError(where + ": field \"prompt\": empty (the model needs something to answer)");
    completion = string_field(field(record, "completion", where), "completion", where);
    if (completion.empty()) throw InputError(where + ": field \"completion\": empty");
  } else {
    const json& msgs = record.at("messages");
    if (!msgs.is_array() || msgs.empty()) {
      throw InputError(where + ": field \"messages\": must be a non-empty array of {\"role\", \"content\"} objects");
    }
    for (size_t i = 0; i < msgs.size(); ++i) {
      const std::string at = "messages[" + std::to_string(i) + "]";
      const json& m = msgs[i];
      if (!m.is_object()) throw InputError(where + ": field \"" + at + "\": must be an object with \"role\" and \"content\"");
      const std::string role = string_field(field(m, "role", where + ": " + at), at + ".role", where);
      if (!is_role(role)) {
        throw InputError(where + ": field \"" + at + ".role\": \"" + role + "\" is not one of system, user, assistant, tool");
      }
      const std::string content = message_text(m, role, at, where);
      if (i + 1 < msgs.size()) {
        d.text += "<|" + role + "|>\n" + content + std::string(kTaskEnd) + "\n";
      } else {
        if (role != "assistant") {
          throw InputError(where + ": field \"" + at + ".role\": the last message is the completion and must be the assistant's, got \"" +
                           role + "\"");
        }
        if (content.empty()) throw InputError(where + ": field \"" + at + ".content\": empty (the completion)");
        d.text += "<|assistant|>\n";
        completion = content;
      }
    }
  }
  d.completion_at = static_cast<int64_t>(d.text.size());
  d.text += completion;
  d.text += kTaskEnd;
  return d;
}

TaskRead read_task_jsonl(const fs::path& path, bool skip_bad) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string() + ": cannot open");
  TaskRead out;
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = path.string() + ":" + std::to_string(n);
    try {
      const int64_t bad = first_invalid_utf8(line);
      if (bad >= 0) throw InputError(where + ": invalid UTF-8 at byte " + std::to_string(bad + 1) + " of the line");
      json record;
      try {
        record = json::parse(line);
      } catch (const json::parse_error& e) {
        throw InputError(where + ": not JSON (error at byte " + std::to_string(e.byte) + " of the line)");
      } catch (const json::exception& e) {
        // Well-formed JSON that cannot be held, e.g. a number beyond a double's range.
        throw InputError(where + ": not readable JSON (" + e.what() + ")");
      }
      Document d = render_task_record(record, where);
      (record.contains("messages") ? out.chat : out.prompt_completion) += 1;
      if (d.text.find(kToolCall) != std::string::npos) ++out.tool_calls;
      out.records.push_back(std::move(d));
    } catch (const InputError& e) {
      if (!skip_bad) throw InputError(std::string(e.what()) + " (pass --skip-bad to skip bad records)");
      ++out.skipped;
      if (out.skipped_reasons.size() < 5) out.skipped_reasons.push_back(e.what());
    }
  }
  if (in.bad()) throw InputError(path.string() + ": read error");
  if (out.records.empty()) {
    throw InputError(path.string() + ": no usable records" +
                     (out.skipped ? " (" + std::to_string(out.skipped) + " bad records skipped)" : std::string(" (the file is empty)")));
  }
  return out;
}

TaskTokens encode_task_record(const Tokenizer& tokenizer, const Document& d) {
  const std::string_view text(d.text);
  return {tokenizer.encode(text.substr(0, size_t(d.completion_at))), tokenizer.encode(text.substr(size_t(d.completion_at)))};
}

std::string strip_task_end(std::string_view completion) {
  if (completion.size() >= kTaskEnd.size() && completion.substr(completion.size() - kTaskEnd.size()) == kTaskEnd) {
    completion.remove_suffix(kTaskEnd.size());
  }
  return std::string(completion);
}

}  // namespace flashnas
