// Task data (train/task_data.h, task_eval.h, task_stats.h): the rendering of
// prompt/completion and chat records, the bad-record errors with their line
// numbers (and that data prepare then writes nothing), the completion mask
// in the token file, the masked loss (no gradient from prompt tokens),
// validation windows that score every completion token once, exact-match and
// JSON metrics on fixed examples, length percentiles and suggested budgets,
// and `flashnas eval` on a model trained on task data.
#include <gtest/gtest.h>

#include <cmath>

#include "common/files.h"
#include "common/json_io.h"
#include "supernet/hybrid_lm.h"
#include "train/checkpoint.h"
#include "train/dataset.h"
#include "train/loss.h"
#include "train/task_data.h"
#include "train/task_eval.h"
#include "train/task_stats.h"
#include "train/token_file.h"
#include "train/tokenizer.h"
#include "train/training_data.h"
#include "test_util.h"

namespace flashnas::test {
namespace {

namespace fs = std::filesystem;

TEST(TaskData, PromptCompletionRecordsRenderAsPromptThenCompletionAndTheEndMarker) {
  const Document d = render_task_record(json{{"prompt", "Q: 2+2?\nA: "}, {"completion", "4"}}, "f.jsonl:1");
  EXPECT_EQ(d.text, "Q: 2+2?\nA: 4<|end|>");
  EXPECT_EQ(d.completion_at, 11);
  EXPECT_EQ(d.text.substr(size_t(d.completion_at)), "4<|end|>");
}

TEST(TaskData, ChatRecordsRenderWithTheDocumentedTemplate) {
  const json rec = json::parse(R"({"messages": [
      {"role": "system", "content": "Be brief."},
      {"role": "user", "content": "Weather in Oslo?"},
      {"role": "assistant", "content": "{\"name\": \"weather\"}"},
      {"role": "tool", "content": "rain"},
      {"role": "assistant", "content": "It rains."}]})");
  const Document d = render_task_record(rec, "f.jsonl:3");
  const std::string prompt =
      "<|system|>\nBe brief.<|end|>\n<|user|>\nWeather in Oslo?<|end|>\n<|assistant|>\n{\"name\": \"weather\"}<|end|>\n"
      "<|tool|>\nrain<|end|>\n<|assistant|>\n";
  EXPECT_EQ(d.text, prompt + "It rains.<|end|>");
  EXPECT_EQ(d.completion_at, int64_t(prompt.size()));
}

// Agent logs as agents write them (OpenAI's tool_calls, tool results with
// their call ids): each call on its own line after the assistant's text.
TEST(TaskData, ToolCallsRenderOnTheirOwnLinesAfterTheContent) {
  const json rec = json::parse(R"({"messages": [
      {"role": "user", "content": "Weather in Oslo and Rome?"},
      {"role": "assistant", "content": null, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
      {"role": "tool", "tool_call_id": "c1", "name": "weather", "content": "rain"},
      {"role": "assistant", "content": "Now Rome.", "tool_calls": [
        {"name": "weather", "arguments": {"city": "Rome", "days": 2}},
        {"name": "clock", "arguments": {}}]}]})");
  const Document d = render_task_record(rec, "f.jsonl:1");
  const std::string prompt =
      "<|user|>\nWeather in Oslo and Rome?<|end|>\n<|assistant|>\n<|tool_call|>{\"name\": \"weather\", \"arguments\": "
      "{\"city\":\"Oslo\"}}<|end|>\n<|tool|>\nrain<|end|>\n<|assistant|>\n";
  EXPECT_EQ(d.text, prompt + "Now Rome.\n<|tool_call|>{\"name\": \"weather\", \"arguments\": {\"city\":\"Rome\",\"days\":2}}\n"
                             "<|tool_call|>{\"name\": \"clock\", \"arguments\": {}}<|end|>");
  EXPECT_EQ(d.completion_at, int64_t(prompt.size()));
}

TEST(TaskData, BadRecordsAreRefusedWithFileLineAndField) {
  TempDir dir;
  const std::string good = R"({"prompt": "a", "completion": "b"})";
  struct Case {
    std::string line, expect;
  };
  const std::vector<Case> cases = {
      {R"({"prompt": "a"})", ":2: field \"completion\": missing"},
      {R"({"prompt": "a", "completion": 3})", ":2: field \"completion\": must be a string, got number"},
      {R"({"prompt": "a", "completion": ""})", ":2: field \"completion\": empty"},
      {"{\"prompt\": \"a\xff\", \"completion\": \"b\"}", ":2: invalid UTF-8 at byte 14 of the line"},
      {"not json", ":2: not JSON"},
      {R"([1, 2])", ":2: a record must be a JSON object"},
      {R"({"messages": [{"role": "user", "content": "hi"}]})",
       ":2: field \"messages[0].role\": the last message is the completion and must be the assistant's"},
      {R"({"messages": [{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "x"}]})",
       ":2: field \"messages[0].role\": \"robot\" is not one of system, user, assistant, tool"},
      {R"({"messages": [{"role": "user"}, {"role": "assistant", "content": "x"}]})",
       ":2: messages[0]: field \"content\": missing"},
      {R"({"prompt": "a", "completion": "b<|end|>"})", ":2: field \"completion\": holds the end marker <|end|>"},
      {R"({"messages": [{"role": "user", "content": "x", "tool_calls": [{"name": "f"}]}, {"role": "assistant", "content": "y"}]})",
       ":2: field \"messages[0].tool_calls\": only an assistant message makes tool calls"},
      {R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}]})",
       ":2: messages[1].tool_calls[0].function: field \"name\": missing"},
      {R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"name": "f", "arguments": "{oops"}]}]})",
       ":2: field \"messages[1].tool_calls[0].arguments\": not JSON"},
      {R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"name": "f", "arguments": [1]}]}]})",
       ":2: field \"messages[1].tool_calls[0].arguments\": must be a JSON object"},
      {R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": []}]})",
       ":2: field \"messages[1].tool_calls\": must be a non-empty array"},
  };
  for (const auto& c : cases) {
    dir.write("bad.jsonl", good + "\n" + c.line + "\n" + good + "\n");
    const std::string msg = input_error_of([&] { read_task_jsonl(dir / "bad.jsonl", false); });
    EXPECT_NE(msg.find((dir / "bad.jsonl").string() + c.expect), std::string::npos) << c.line << "\n  got: " << msg;
    EXPECT_NE(msg.find("--skip-bad"), std::string::npos) << msg;
    const TaskRead skipped = read_task_jsonl(dir / "bad.jsonl", true);
    EXPECT_EQ(skipped.records.size(), 2u) << c.line;
    EXPECT_EQ(skipped.skipped, 1) << c.line;
  }
}

TEST(TaskData, PrepareRefusesABadRecordAndWritesNothing) {
  TempDir dir;
  dir.write("calls.jsonl", "{\"prompt\": \"a\", \"completion\": \"b\"}\n\n{\"prompt\": \"a\", \"completion\": []}\n");
  const auto before = file_tree(dir.path());
  const auto r = run_cli({"data", "prepare", "--input", (dir / "calls.jsonl").string(), "--out", (dir / "t.tokens").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find((dir / "calls.jsonl").string() + ":3: field \"completion\": must be a string, got array"), std::string::npos)
      << r.err;
  EXPECT_EQ(file_tree(dir.path()), before);
  const auto s = run_cli({"data", "prepare", "--input", (dir / "calls.jsonl").string(), "--out", (dir / "t.tokens").string(),
                          "--skip-bad"});
  EXPECT_EQ(s.exit_code, 0) << s.err;
  EXPECT_NE(s.out.find("1 task records"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find("skipped 1 bad records"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find(":3: field \"completion\""), std::string::npos) << s.out;
  const auto t = run_cli({"data", "prepare", "--input", (dir / "calls.jsonl").string(), "--out", (dir / "u.tokens").string(),
                          "--skip-bad"});
  ASSERT_EQ(t.exit_code, 0);
  // --skip-bad is for task data only.
  dir.write("plain.txt", "some text\n");
  const auto u = run_cli({"data", "prepare", "--input", (dir / "plain.txt").string(), "--out", (dir / "p.tokens").string(),
                          "--skip-bad"});
  EXPECT_EQ(u.exit_code, 2);
  EXPECT_NE(u.err.find("--skip-bad: only for task data"), std::string::npos) << u.err;
  EXPECT_FALSE(fs::exists(dir / "p.tokens"));
}

// Task records of known lengths (byte tokens): record k has a prompt of
// 10 + k % 7 bytes and a completion of 3 + k % 5 bytes (plus the 7-byte end marker).
fs::path task_file(const TempDir& dir, int n, const std::string& name = "task.tokens") {
  std::string jsonl;
  for (int k = 0; k < n; ++k) {
    json r = {{"prompt", std::string(size_t(10 + k % 7), char('a' + k % 26))},
              {"completion", std::string(size_t(3 + k % 5), char('A' + k % 26))}};
    jsonl += r.dump() + "\n";
  }
  dir.write(name + ".jsonl", jsonl);
  prepare_token_file(dir / (name + ".jsonl"), dir / name, "", 1 << 20);
  return dir / name;
}

TEST(TaskData, TheTokenFileKeepsTheCompletionMaskPerToken) {
  TempDir dir;
  const fs::path p = task_file(dir, 12);
  TokenFile f(p);
  ASSERT_TRUE(f.has_completion_mask());
  ASSERT_EQ(f.num_docs(), 12);
  for (int k = 0; k < 12; ++k) {
    const int64_t P = 10 + k % 7, C = 3 + k % 5 + 7;
    EXPECT_EQ(f.doc_end(k) - f.doc_begin(k), P + C);
    EXPECT_EQ(f.doc_completion_tokens(k), C);
    EXPECT_EQ(f.doc_completion_bytes(k), C);
    std::vector<uint8_t> mask(size_t(P + C));
    f.read_mask(f.doc_begin(k), P + C, mask.data());
    for (int64_t i = 0; i < P + C; ++i) EXPECT_EQ(mask[size_t(i)], i >= P ? 1 : 0) << "record " << k << " token " << i;
  }
  // A damaged mask (a prompt token after a completion token) is refused.
  std::string bytes = read_file(p);
  bytes[bytes.size() - 1] = 0;  // the last record's last completion token
  bytes[bytes.size() - 2] = 1;
  write_file_atomic(dir / "damaged.tokens", bytes);
  EXPECT_NE(input_error_of([&] { TokenFile g(dir / "damaged.tokens"); }).find("completion mask of document 11 is damaged"),
            std::string::npos);
  // Plain text keeps format version 1, with no mask.
  dir.write("plain.txt", "hello\n");
  prepare_token_file(dir / "plain.txt", dir / "plain.tokens", "", 1 << 20);
  EXPECT_FALSE(TokenFile(dir / "plain.tokens").has_completion_mask());
}

TEST(TaskData, SentencePieceTokenizesPromptAndCompletionApart) {
  TempDir dir;
  std::string jsonl, text;
  for (int k = 0; k < 60; ++k) {
    const std::string prompt = "Request: read the file number " + std::to_string(k) + " please.\nCall: ";
    const std::string completion = "{\"name\": \"open\", \"arguments\": {\"n\": " + std::to_string(k) + "}}";
    jsonl += json{{"prompt", prompt}, {"completion", completion}}.dump() + "\n";
    text += prompt + completion + "<|end|>\n";
  }
  dir.write("calls.jsonl", jsonl);
  dir.write("corpus.txt", text);
  train_sentencepiece({dir / "corpus.txt"}, 300, dir / "sp.model");
  const PrepareSummary summary = prepare_token_file(dir / "calls.jsonl", dir / "calls.tokens", (dir / "sp.model").string(), 1 << 20);
  EXPECT_EQ(summary.type, "sentencepiece");
  ASSERT_TRUE(summary.task);
  EXPECT_EQ(summary.task->records, 60);
  EXPECT_EQ(summary.to_json()["task"]["records"], 60);
  TokenFile f(dir / "calls.tokens");
  ASSERT_TRUE(f.has_completion_mask());
  auto sp = load_sentencepiece(dir / "sp.model");
  const auto records = read_task_jsonl(dir / "calls.jsonl", false).records;
  ASSERT_EQ(f.num_docs(), int64_t(records.size()));
  for (int64_t d = 0; d < f.num_docs(); ++d) {
    const int64_t n = f.doc_end(d) - f.doc_begin(d), c = f.doc_completion_tokens(d);
    std::vector<int64_t> ids(static_cast<size_t>(n), 0);
    f.read(f.doc_begin(d), n, ids.data());
    const std::vector<int32_t> prompt(ids.begin(), ids.end() - c), completion(ids.end() - c, ids.end());
    const std::string& t = records[size_t(d)].text;
    // The boundary: each part is the tokenizer's encoding of that part alone.
    EXPECT_EQ(prompt, sp->encode(t.substr(0, size_t(records[size_t(d)].completion_at)))) << "record " << d;
    EXPECT_EQ(completion, sp->encode(t.substr(size_t(records[size_t(d)].completion_at)))) << "record " << d;
    EXPECT_EQ(sp->decode(completion), t.substr(size_t(records[size_t(d)].completion_at))) << "record " << d;
    EXPECT_EQ(f.doc_completion_bytes(d), int64_t(t.size()) - records[size_t(d)].completion_at);
  }
}

TEST(TaskData, ValidationWindowsScoreEveryCompletionTokenOnce) {
  TempDir dir;
  auto file = std::make_shared<TokenFile>(task_file(dir, 60));
  const TokenDataset ds(file, 0.3, 5);
  ASSERT_TRUE(ds.task());
  const int64_t T = 48;  // every record (at most 32 tokens) fits a window
  const int64_t n = ds.val_windows(T);
  torch::Tensor w;
  const auto batch = ds.val_batch(0, n, T, &w);
  ASSERT_EQ(w.sizes(), torch::IntArrayRef({n, T}));
  EXPECT_EQ(int64_t(w.sum().item<double>()), ds.val().completion_tokens);
  // Each counted target is a completion byte (upper case in task_file), each
  // other target a prompt byte or beyond the window's records.
  const auto targets = batch.narrow(1, 1, T);
  EXPECT_TRUE(torch::all((targets >= 'A').logical_and(targets <= 'Z').logical_or(targets == '<').logical_or(targets == '|')
                             .logical_or(targets == 'e').logical_or(targets == 'n').logical_or(targets == 'd').logical_or(targets == '>')
                             .logical_or(w == 0))
                  .item<bool>());
  // Training windows start at a record's first token and weight its completion.
  torch::Tensor tw;
  const auto tb = ds.train_batch(7, 4, T, &tw);
  for (int r = 0; r < 4; ++r) {
    EXPECT_GE(tb[r][0].item<int64_t>(), 'a');
    EXPECT_LE(tb[r][0].item<int64_t>(), 'z');
    EXPECT_EQ(tw[r][0].item<float>(), 0.0f);
  }
  EXPECT_GT(tw.sum().item<double>(), 0);
  // Completion bits per byte use completion bytes per completion token (1 for bytes).
  EXPECT_DOUBLE_EQ(ds.val_bytes_per_token(), 1.0);
}

TEST(TaskData, TheMaskedLossGivesNoGradientFromPromptTokens) {
  TempDir dir;
  auto file = std::make_shared<TokenFile>(task_file(dir, 40));
  const TokenDataset ds(file, 0.2, 1);
  const int64_t T = 40;
  torch::Tensor w;
  const auto batch = ds.train_batch(0, 3, T, &w);
  torch::manual_seed(0);
  HybridLM model(ArchSpec::parse(R"({"d_model": 16, "layers": [{"type": "attn", "n_heads": 2}, {"type": "ffn", "d_ff": 32}]})", "t"));
  auto grads = [&](const torch::Tensor& targets) {
    model->zero_grad();
    auto logits = model->forward(batch.narrow(1, 0, T));
    logits.retain_grad();
    auto loss = lm_loss(logits, targets, w);
    loss.backward();
    std::vector<torch::Tensor> g = {logits.grad().clone()};
    for (const auto& p : model->parameters()) g.push_back(p.grad().clone());
    return std::make_pair(loss.item<double>(), g);
  };
  const auto targets = batch.narrow(1, 1, T).clone();
  const auto [loss_a, ga] = grads(targets);
  // The logits' gradient is zero exactly where the target is a prompt token.
  const auto prompt_rows = (w == 0).unsqueeze(-1).expand_as(ga[0]);
  EXPECT_EQ(ga[0].masked_select(prompt_rows).abs().max().item<float>(), 0.0f);
  EXPECT_GT(ga[0].masked_select(prompt_rows.logical_not()).abs().max().item<float>(), 0.0f);
  // Changing every prompt target changes neither the loss nor any parameter's gradient.
  const auto changed = torch::where(w == 0, (targets + 17) % 256, targets);
  ASSERT_FALSE(torch::equal(changed, targets));
  const auto [loss_b, gb] = grads(changed);
  EXPECT_EQ(loss_a, loss_b);
  for (size_t i = 1; i < ga.size(); ++i) EXPECT_TRUE(torch::equal(ga[i], gb[i])) << "parameter " << i;
  // The loss is the mean cross-entropy over the completion targets.
  const auto logp = torch::log_softmax(model->forward(batch.narrow(1, 0, T)).to(torch::kFloat64), -1);
  const auto nll = -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1);
  EXPECT_NEAR(loss_a, (nll * w.to(torch::kFloat64)).sum().item<double>() / w.sum().item<double>(), 1e-5);
}

TEST(TaskEval, ExactMatchAndJsonChecksOnFixedExamples) {
  const std::string ref = R"({"name": "f", "arguments": {"x": 1}})";
  auto c = check_completion(ref + "<|end|>trailing", ref);
  EXPECT_TRUE(c.exact);
  EXPECT_TRUE(c.reference_is_json);
  EXPECT_TRUE(c.valid_json);
  EXPECT_TRUE(c.equal_json);
  c = check_completion(R"({"arguments": {"x": 1}, "name": "f"}<|end|>)", ref);  // reordered keys
  EXPECT_FALSE(c.exact);
  EXPECT_TRUE(c.valid_json);
  EXPECT_TRUE(c.equal_json);
  c = check_completion(R"({"name": "f", "arguments": {"x": 2}}<|end|>)", ref);
  EXPECT_FALSE(c.exact);
  EXPECT_TRUE(c.valid_json);
  EXPECT_FALSE(c.equal_json);
  c = check_completion(R"({"name": "f", "argu)", ref);  // did not stop, cut JSON
  EXPECT_FALSE(c.exact);
  EXPECT_FALSE(c.valid_json);
  c = check_completion(ref, ref);  // right text but no end marker: the model did not stop
  EXPECT_FALSE(c.exact);
  EXPECT_TRUE(c.equal_json);
  c = check_completion("search<|end|>", "search");  // not JSON: exact match only
  EXPECT_TRUE(c.exact);
  EXPECT_FALSE(c.reference_is_json);
  EXPECT_FALSE(check_completion("42<|end|>", "42").reference_is_json);  // a bare number is not a JSON payload
}

// Per-call metrics: reference call i against generated call i, by name,
// whole call and argument fields; a generated call line that is not
// {"name", "arguments"} JSON counts as invalid.
TEST(TaskEval, ToolCallMetricsOnFixedExamples) {
  const std::string ref = "Checking.\n<|tool_call|>{\"name\": \"weather\", \"arguments\": {\"city\":\"Rome\",\"days\":2}}\n"
                          "<|tool_call|>{\"name\": \"clock\", \"arguments\": {\"tz\":\"CET\"}}";
  auto c = check_completion(ref + "<|end|>", ref);
  EXPECT_TRUE(c.exact);
  EXPECT_EQ(c.ref_calls, 2);
  EXPECT_EQ(c.got_calls, 2);
  EXPECT_EQ(c.got_valid, 2);
  EXPECT_EQ(c.names_correct, 2);
  EXPECT_EQ(c.calls_exact, 2);
  EXPECT_EQ(c.fields, 3);
  EXPECT_EQ(c.fields_correct, 3);
  // The right function with one argument wrong, and the second call cut short.
  c = check_completion("Checking.\n<|tool_call|>{\"name\": \"weather\", \"arguments\": {\"days\": 2, \"city\": \"Oslo\"}}\n"
                       "<|tool_call|>{\"name\": \"clo",
                       ref);
  EXPECT_FALSE(c.exact);
  EXPECT_EQ(c.got_calls, 2);
  EXPECT_EQ(c.got_valid, 1);
  EXPECT_EQ(c.names_correct, 1);
  EXPECT_EQ(c.calls_exact, 0);
  EXPECT_EQ(c.fields, 3);
  EXPECT_EQ(c.fields_correct, 1) << "days is right, city is not, the clock call is missing";
  // Another function: its arguments do not count.
  c = check_completion("<|tool_call|>{\"name\": \"forecast\", \"arguments\": {\"city\": \"Rome\", \"days\": 2}}<|end|>", ref);
  EXPECT_EQ(c.names_correct, 0);
  EXPECT_EQ(c.fields_correct, 0);
  // No calls in the reference: nothing counted.
  c = check_completion("hello<|end|>", "hello");
  EXPECT_EQ(c.ref_calls + c.got_calls + c.fields, 0);
}

TEST(TaskStats, PercentilesAndSuggestedBudgets) {
  std::vector<int64_t> v = {5, 1, 4, 2, 3, 10, 9, 8, 7, 6};
  EXPECT_EQ(percentile(v, 50), 5);
  EXPECT_EQ(percentile(v, 90), 9);
  EXPECT_EQ(percentile(v, 99), 10);
  TempDir dir;
  TokenFile f(task_file(dir, 70));
  const TaskStats s = task_length_stats(f);
  EXPECT_EQ(s.records, 70);
  std::vector<int64_t> prompt, completion;
  for (int k = 0; k < 70; ++k) prompt.push_back(10 + k % 7), completion.push_back(3 + k % 5 + 7);
  EXPECT_EQ(s.prompt.p90, percentile(prompt, 90));
  EXPECT_EQ(s.prompt.p99, 16);
  EXPECT_EQ(s.completion.p50, percentile(completion, 50));
  EXPECT_EQ(s.completion.max, 14);
  const std::string toml = suggest_budgets_toml(s, 50, "x.tokens");
  EXPECT_NE(toml.find("workload = \"batch=1,prompt=" + std::to_string(s.prompt.p90) + ",generate=" +
                      std::to_string(s.completion.p90) + "\"\nmax_ms = 50"),
            std::string::npos)
      << toml;
  EXPECT_NE(toml.find("name = \"agent-p99\""), std::string::npos);
  const auto r = run_cli({"data", "info", (dir / "task.tokens").string(), "--suggest-budgets", "50"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, toml.substr(0, toml.find("x.tokens")) + (dir / "task.tokens").string() + toml.substr(toml.find("x.tokens") + 8));
  dir.write("plain.txt", "some text\n");
  prepare_token_file(dir / "plain.txt", dir / "plain.tokens", "", 1 << 20);
  const auto bad = run_cli({"data", "info", (dir / "plain.tokens").string(), "--suggest-budgets", "50"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("plain text, not task data"), std::string::npos) << bad.err;
}

// A model trained on a memorisable task: eval reports completion loss and
// metrics, and its figures agree with a plain reimplementation.
TEST(TaskEval, EvalOnTaskDataReportsCompletionLossExactMatchAndJson) {
  TempDir dir;
  std::string jsonl;
  for (int k = 0; k < 40; ++k) {
    jsonl += json{{"prompt", "call " + std::to_string(k % 4) + ": "}, {"completion", "{\"f\": " + std::to_string(k % 4) + "}"}}.dump() + "\n";
  }
  dir.write("calls.jsonl", jsonl);
  const auto p = run_cli({"data", "prepare", "--input", (dir / "calls.jsonl").string(), "--out", (dir / "calls.tokens").string()});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const auto t = run_cli({"train", "--arch", std::string(test::source_dir()) + "/configs/arch/demo-tiny.json", "--data",
                          (dir / "calls.tokens").string(), "--tokens", "120000", "--batch-size", "8", "--seq-len", "32",
                          "--lr", "0.01", "--threads", "2", "--quiet", "--out", (dir / "run").string()});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.out.find("validation (completion tokens)"), std::string::npos) << t.out;
  const auto e = run_cli({"eval", "--model", (dir / "run").string(), "--data", (dir / "calls.tokens").string(), "--json",
                          "--threads", "2"});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  const json j = parse_json(e.out, "eval output");
  EXPECT_NE(j["records_evaluated"].get<std::string>().find("held-out records"), std::string::npos);
  const int64_t n = j["records"].get<int64_t>();
  EXPECT_GE(n, 1);
  EXPECT_EQ(j["generated"].get<int64_t>(), n);
  EXPECT_EQ(j["json_records"].get<int64_t>(), n);
  // Four distinct calls, trained to memorisation: every held-out call is right.
  EXPECT_EQ(j["exact"].get<int64_t>(), n) << e.out;
  EXPECT_EQ(j["json_equal"].get<int64_t>(), n);
  // The loss: mean over completion tokens of -log p, from a plain per-record forward pass.
  LoadedModel m = load_model_dir(dir / "run");
  TokenFile f(dir / "calls.tokens");
  const TokenDataset ds(std::make_shared<TokenFile>(dir / "calls.tokens"), m.config["recipe"]["val_fraction"].get<double>(),
                        m.config["recipe"]["seed"].get<uint64_t>());
  torch::NoGradGuard ng;
  double nats = 0;
  int64_t count = 0, hits = 0;
  for (const int64_t d : ds.val_docs()) {
    std::vector<int64_t> ids(size_t(f.doc_end(d) - f.doc_begin(d)));
    f.read(f.doc_begin(d), int64_t(ids.size()), ids.data());
    const int64_t P = int64_t(ids.size()) - f.doc_completion_tokens(d);
    const auto logp = torch::log_softmax(m.model->forward(torch::tensor(ids).unsqueeze(0)).squeeze(0).to(torch::kFloat64), -1);
    for (int64_t i = P; i < int64_t(ids.size()); ++i) {
      nats -= logp[i - 1][ids[size_t(i)]].item<double>(), ++count;
      hits += logp[i - 1].argmax().item<int64_t>() == ids[size_t(i)];
    }
  }
  EXPECT_EQ(j["completion_tokens"].get<int64_t>(), count);
  EXPECT_NEAR(j["completion_loss"].get<double>(), nats / double(count), 1e-5);
  EXPECT_NEAR(j["token_accuracy"].get<double>(), double(hits) / double(count), 1e-9);
  // JSONL input is tokenized with the model's tokenizer: all 40 records.
  const auto all = run_cli({"eval", "--model", (dir / "run").string(), "--data", (dir / "calls.jsonl").string(), "--json",
                            "--generate", "0", "--threads", "2"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(parse_json(all.out, "eval")["records"].get<int64_t>(), 40);
  EXPECT_EQ(parse_json(all.out, "eval")["generated"].get<int64_t>(), 0);
}

}  // namespace
}  // namespace flashnas::test
