#include "train/task_eval.h"

#include <chrono>
#include <cmath>
#include <cstdio>

#include "common/error.h"
#include "train/corpus.h"
#include "train/loss.h"
#include "train/task_data.h"

namespace flashnas {
namespace fs = std::filesystem;

std::vector<TaskRecord> task_records(const TokenFile& f, const std::vector<int64_t>& docs) {
  if (!f.has_completion_mask()) {
    throw InputError(f.path().string() + ": plain text, not task data; task metrics need a token file prepared from "
                     "task records (.jsonl)");
  }
  std::vector<TaskRecord> out;
  out.reserve(docs.size());
  for (const int64_t d : docs) {
    const int64_t b = f.doc_begin(d), e = f.doc_end(d), c = f.doc_completion_tokens(d);
    std::vector<int64_t> ids(size_t(e - b));
    f.read(b, e - b, ids.data());
    TaskRecord r;
    r.prompt.assign(ids.begin(), ids.end() - c);
    r.completion.assign(ids.end() - c, ids.end());
    r.completion_bytes = f.doc_completion_bytes(d);
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<TaskRecord> task_records_from_jsonl(const fs::path& path, const Tokenizer& tokenizer) {
  std::vector<TaskRecord> out;
  for (const Document& d : read_task_jsonl(path, false).records) {
    TaskRecord r;
    const TaskTokens t = encode_task_record(tokenizer, d);
    r.prompt.assign(t.prompt.begin(), t.prompt.end());
    r.completion.assign(t.completion.begin(), t.completion.end());
    r.completion_bytes = int64_t(d.text.size()) - d.completion_at;
    out.push_back(std::move(r));
  }
  return out;
}

namespace {
// Text for reports: invalid UTF-8 (a model can emit any bytes) becomes U+FFFD.
std::string printable(std::string s) {
  std::string out;
  for (;;) {
    const int64_t bad = first_invalid_utf8(s);
    if (bad < 0) return out + s;
    out += s.substr(0, size_t(bad)) + "\xEF\xBF\xBD";
    s.erase(0, size_t(bad) + 1);
  }
}
}  // namespace

namespace {
// The tool calls of a completion: each line that begins with the marker, the
// JSON after it (discarded when it is not {"name": string, "arguments": object}).
std::vector<json> tool_calls(const std::string& text) {
  std::vector<json> out;
  size_t at = 0;
  while (at <= text.size()) {
    const size_t nl = text.find('\n', at);
    const std::string line = text.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
    if (line.rfind(kToolCall, 0) == 0) {
      json c = json::parse(line.substr(kToolCall.size()), nullptr, false);
      const bool ok = !c.is_discarded() && c.is_object() && c.contains("name") && c["name"].is_string() &&
                      c.contains("arguments") && c["arguments"].is_object();
      out.push_back(ok ? c : json(json::value_t::discarded));
    }
    if (nl == std::string::npos) break;
    at = nl + 1;
  }
  return out;
}
}  // namespace

CompletionCheck check_completion(const std::string& generated, const std::string& reference) {
  CompletionCheck c;
  const size_t end = generated.find(kTaskEnd);
  const std::string answer = end == std::string::npos ? generated : generated.substr(0, end);
  const std::vector<json> ref_calls = tool_calls(reference), got_calls = tool_calls(answer);
  c.ref_calls = int64_t(ref_calls.size());
  c.got_calls = int64_t(got_calls.size());
  for (const auto& g : got_calls) c.got_valid += !g.is_discarded();
  for (size_t i = 0; i < ref_calls.size(); ++i) {
    if (ref_calls[i].is_discarded()) continue;
    const json& ra = ref_calls[i]["arguments"];
    c.fields += int64_t(ra.size());
    if (i >= got_calls.size() || got_calls[i].is_discarded()) continue;
    const json& g = got_calls[i];
    const bool name = g["name"] == ref_calls[i]["name"];
    c.names_correct += name;
    c.calls_exact += name && g["arguments"] == ra;
    if (!name) continue;  // another function's arguments are not this one's
    for (const auto& [k, v] : ra.items()) c.fields_correct += g["arguments"].contains(k) && g["arguments"][k] == v;
  }
  c.exact = end != std::string::npos && answer == reference;
  const json ref = json::parse(reference, nullptr, false);
  c.reference_is_json = !ref.is_discarded() && (ref.is_object() || ref.is_array());
  if (c.reference_is_json) {
    const json got = json::parse(answer, nullptr, false);
    c.valid_json = !got.is_discarded();
    c.equal_json = c.valid_json && got == ref;
  }
  return c;
}

json TaskEvalResult::to_json() const {
  auto num = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
  json mm = json::array();
  for (const auto& m : mismatches) mm.push_back({{"prompt_tail", m.prompt_tail}, {"expected", m.expected}, {"got", m.got}});
  return json{{"records", records},
              {"completion_tokens", completion_tokens},
              {"completion_bytes", completion_bytes},
              {"completion_loss", num(completion_loss)},
              {"completion_bpb", num(completion_bpb)},
              {"generated", generated},
              {"exact", exact},
              {"exact_rate", num(exact_rate())},
              {"json_records", json_records},
              {"json_valid", json_valid},
              {"json_valid_rate", num(json_valid_rate())},
              {"json_equal", json_equal},
              {"json_equal_rate", num(json_equal_rate())},
              {"token_accuracy", num(token_accuracy)},
              {"tool_records", tool_records},
              {"calls", calls},
              {"calls_generated", calls_generated},
              {"call_json_valid", call_json_valid},
              {"call_valid_rate", num(call_valid_rate())},
              {"call_name_correct", call_name_correct},
              {"call_name_rate", num(call_name_rate())},
              {"call_exact", call_exact},
              {"call_exact_rate", num(call_exact_rate())},
              {"arg_fields", arg_fields},
              {"arg_fields_correct", arg_fields_correct},
              {"arg_field_rate", num(arg_field_rate())},
              {"seconds", seconds},
              {"mismatches", mm}};
}

std::string TaskEvalResult::summary() const {
  char buf[768];
  int n = std::snprintf(buf, sizeof buf, "completion loss %.4f (%.4f bits/byte, token accuracy %.1f%%) on %lld records",
                        completion_loss, completion_bpb, 100.0 * token_accuracy, static_cast<long long>(records));
  if (generated > 0) {
    n += std::snprintf(buf + n, sizeof buf - size_t(n), "; exact match %lld/%lld (%.1f%%)", static_cast<long long>(exact),
                       static_cast<long long>(generated), 100.0 * exact_rate());
  }
  if (json_records > 0) {
    n += std::snprintf(buf + n, sizeof buf - size_t(n), "; JSON valid %lld/%lld (%.1f%%), equal %lld/%lld (%.1f%%)",
                       static_cast<long long>(json_valid), static_cast<long long>(json_records), 100.0 * json_valid_rate(),
                       static_cast<long long>(json_equal), static_cast<long long>(json_records), 100.0 * json_equal_rate());
  }
  if (calls > 0) {
    std::snprintf(buf + n, sizeof buf - size_t(n),
                  "; tool calls: name %lld/%lld, whole call %lld/%lld, argument fields %lld/%lld (%.1f%%), call JSON valid %lld/%lld",
                  static_cast<long long>(call_name_correct), static_cast<long long>(calls), static_cast<long long>(call_exact),
                  static_cast<long long>(calls), static_cast<long long>(arg_fields_correct), static_cast<long long>(arg_fields),
                  100.0 * arg_field_rate(), static_cast<long long>(call_json_valid), static_cast<long long>(calls_generated));
  }
  return buf;
}

TaskEvalResult evaluate_task(HybridLM model, const Tokenizer& tokenizer, const std::vector<TaskRecord>& records,
                             const TaskEvalOptions& o, const std::function<void(const char*, int64_t, int64_t)>& progress) {
  if (records.empty()) throw InputError("task evaluation: no records");
  if (o.batch < 1) throw InputError("--batch: must be >= 1, got " + std::to_string(o.batch));
  if (o.max_new < 0) throw InputError("--max-new-tokens: must be >= 0 (0: the reference's tokens + 32), got " + std::to_string(o.max_new));
  const auto t0 = std::chrono::steady_clock::now();
  const bool was_training = model->is_training();
  model->eval();
  const torch::Device device = model->parameters().front().device();
  TaskEvalResult r;
  r.records = int64_t(records.size());
  const int64_t R = r.records;
  double nats = 0, hits = 0;
  {
    torch::NoGradGuard no_grad;
    for (int64_t b = 0; b < R; b += o.batch) {
      const int64_t n = std::min(o.batch, R - b);
      int64_t L = 0;
      for (int64_t i = 0; i < n; ++i) {
        const auto& rec = records[size_t(b + i)];
        L = std::max<int64_t>(L, int64_t(rec.prompt.size() + rec.completion.size()));
      }
      auto tokens = torch::zeros({n, L}, torch::kLong);
      auto weights = torch::zeros({n, L - 1}, torch::kFloat32);
      for (int64_t i = 0; i < n; ++i) {
        const auto& rec = records[size_t(b + i)];
        const int64_t P = int64_t(rec.prompt.size()), C = int64_t(rec.completion.size());
        auto* t = tokens.data_ptr<int64_t>() + i * L;
        std::copy(rec.prompt.begin(), rec.prompt.end(), t);
        std::copy(rec.completion.begin(), rec.completion.end(), t + P);
        // Target t+1 is a completion token for t+1 in [P, P + C); a record
        // with an empty prompt cannot predict its first token.
        for (int64_t k = std::max<int64_t>(P, 1); k < P + C; ++k) weights.data_ptr<float>()[i * (L - 1) + k - 1] = 1;
        r.completion_tokens += C - (P == 0 ? 1 : 0);
        r.completion_bytes += rec.completion_bytes;
      }
      const auto x = tokens.to(device);
      const auto logits = model->forward(x.narrow(1, 0, L - 1));
      nats += lm_loss_sum(logits, x.narrow(1, 1, L - 1), weights).nats;
      hits += (logits.argmax(-1).eq(x.narrow(1, 1, L - 1)).to(torch::kFloat32) * weights.to(device)).sum().item<double>();
      if (progress) progress("scored", b + n, R);
    }
  }
  r.completion_loss = nats / double(std::max<int64_t>(1, r.completion_tokens));
  r.token_accuracy = hits / double(std::max<int64_t>(1, r.completion_tokens));
  r.completion_bpb = r.completion_loss / std::log(2.0) * double(r.completion_tokens) / double(std::max<int64_t>(1, r.completion_bytes));

  const int64_t G = o.generate_records < 0 ? R : std::min(o.generate_records, R);
  {
    c10::InferenceMode guard;
    for (int64_t i = 0; i < G; ++i) {
      const auto& rec = records[size_t(i)];
      if (rec.prompt.empty()) continue;
      std::vector<int32_t> ref_ids(rec.completion.begin(), rec.completion.end());
      const std::string reference = strip_task_end(tokenizer.decode(ref_ids));
      const int64_t max_new = o.max_new > 0 ? o.max_new : int64_t(rec.completion.size()) + 32;
      auto x = torch::tensor(rec.prompt, torch::kLong).unsqueeze(0).to(device);
      auto [logits, cache] = model->prefill(x, int64_t(rec.prompt.size()) + max_new);
      torch::Tensor tok = logits.select(1, logits.size(1) - 1).argmax(-1);
      std::vector<int32_t> got;
      std::string text;
      for (int64_t k = 0; k < max_new; ++k) {
        got.push_back(int32_t(tok.item<int64_t>()));
        text = tokenizer.decode(got);
        if (text.find(kTaskEnd) != std::string::npos) break;
        if (k + 1 < max_new) tok = model->step(tok, cache).argmax(-1);
      }
      const CompletionCheck c = check_completion(text, reference);
      ++r.generated;
      r.exact += c.exact;
      r.json_records += c.reference_is_json;
      r.json_valid += c.valid_json;
      r.json_equal += c.equal_json;
      r.tool_records += c.ref_calls > 0;
      r.calls += c.ref_calls;
      r.calls_generated += c.got_calls;
      r.call_json_valid += c.got_valid;
      r.call_name_correct += c.names_correct;
      r.call_exact += c.calls_exact;
      r.arg_fields += c.fields;
      r.arg_fields_correct += c.fields_correct;
      if (!c.exact && r.mismatches.size() < 3) {
        std::vector<int32_t> p(rec.prompt.begin(), rec.prompt.end());
        std::string prompt = tokenizer.decode(p);
        if (prompt.size() > 120) prompt = prompt.substr(prompt.size() - 120);
        r.mismatches.push_back({printable(prompt), printable(reference), printable(text)});
      }
      if (progress) progress("generated", i + 1, G);
    }
  }
  if (was_training) model->train();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace flashnas
