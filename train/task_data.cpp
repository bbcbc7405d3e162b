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

}  // namespace

json TaskRead::describe() const {
  return json{{"format", "jsonl"},
              {"template", std::string(kChatTemplate)},
              {"end", std::string(kTaskEnd)},
              {"records", records.size()},
              {"prompt_completion", prompt_completion},
              {"chat", chat},
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
      const std::string content = string_field(field(m, "content", where + ": " + at), at + ".content", where);
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
      }
      Document d = render_task_record(record, where);
      (record.contains("messages") ? out.chat : out.prompt_completion) += 1;
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
