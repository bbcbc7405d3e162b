// `flashnas data`: prepare token files, train a SentencePiece tokenizer, inspect token files.
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

#include "cli/commands.h"
#include "common/error.h"
#include "common/format.h"
#include "train/corpus.h"
#include "train/task_stats.h"
#include "train/dataset.h"
#include "train/token_file.h"
#include "train/tokenizer.h"
#include "train/training_data.h"

namespace flashnas::cli {
namespace {

void add_prepare(CLI::App& data) {
  struct Opts {
    std::string input, out, tokenizer;
    int64_t max_doc_bytes = 1 << 20;
    bool json = false, skip_bad = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = data.add_subcommand("prepare", "Tokenize UTF-8 text, or task records (.jsonl), into a token file");
  cmd->add_option("--input", o->input,
                  "Text file or folder (read recursively, in sorted order), or a .jsonl file of task records: "
                  "{\"prompt\", \"completion\"} or {\"messages\": [{\"role\", \"content\"}, ...]}")
      ->required();
  cmd->add_flag("--skip-bad", o->skip_bad, "Task records: skip bad records (and count them) instead of refusing the file");
  cmd->add_option("--out", o->out, "Token file to write (atomically)")->required();
  cmd->add_option("--tokenizer", o->tokenizer, "SentencePiece model file; default: byte-level (vocabulary 256)");
  cmd->add_option("--max-doc-bytes", o->max_doc_bytes, "Cut files larger than this into several documents at line ends")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--json", o->json, "Print a JSON summary");
  cmd->callback([o] {
    const json summary = prepare_token_file(o->input, o->out, o->tokenizer, o->max_doc_bytes, o->skip_bad);
    if (o->json) {
      std::cout << summary.dump(2) << "\n";
    } else if (!summary["task"].is_null()) {
      const json& t = summary["task"];
      std::printf("%s: %lld task records (%lld prompt/completion, %lld chat), %s bytes -> %s tokens (%s, vocabulary %lld)\n",
                  o->out.c_str(), static_cast<long long>(t["records"].get<int64_t>()),
                  static_cast<long long>(t["prompt_completion"].get<int64_t>()), static_cast<long long>(t["chat"].get<int64_t>()),
                  with_commas(summary["bytes"].get<int64_t>()).c_str(), with_commas(summary["tokens"].get<int64_t>()).c_str(),
                  summary["type"].get<std::string>().c_str(), static_cast<long long>(summary["vocab_size"].get<int64_t>()));
      if (t["skipped"].get<int64_t>() > 0) {
        std::printf("skipped %lld bad records; the first:\n", static_cast<long long>(t["skipped"].get<int64_t>()));
        for (const auto& r : summary["skipped_reasons"]) std::printf("  %s\n", r.get<std::string>().c_str());
      }
    } else {
      std::printf("%s: %lld documents, %s bytes -> %s tokens (%s, vocabulary %lld)\n", o->out.c_str(),
                  static_cast<long long>(summary["docs"].get<int64_t>()), with_commas(summary["bytes"].get<int64_t>()).c_str(),
                  with_commas(summary["tokens"].get<int64_t>()).c_str(), summary["type"].get<std::string>().c_str(),
                  static_cast<long long>(summary["vocab_size"].get<int64_t>()));
    }
  });
}

void add_tokenizer(CLI::App& data) {
  struct Opts {
    std::string input, out;
    int64_t vocab = 4096;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = data.add_subcommand("tokenizer", "Train a SentencePiece (unigram) tokenizer on a text file or folder");
  cmd->add_option("--input", o->input, "Text file or folder")->required();
  cmd->add_option("--vocab-size", o->vocab, "Vocabulary size")->capture_default_str();
  cmd->add_option("--out", o->out, "Model file to write, e.g. tokenizer.model")->required();
  cmd->callback([o] {
    read_corpus(o->input);  // the same checks as prepare: readable, non-empty, UTF-8
    train_sentencepiece(list_text_files(o->input), o->vocab, o->out);
    std::printf("%s: SentencePiece model, vocabulary %lld\n", o->out.c_str(), static_cast<long long>(o->vocab));
  });
}

void add_info(CLI::App& data) {
  struct Opts {
    std::string file;
    double val_fraction = 0.05;
    uint64_t seed = 0;
    double suggest_ms = 0;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = data.add_subcommand("info", "Describe a token file: header, split by document, unigram entropy; task lengths");
  cmd->add_option("file", o->file, "Token file")->required();
  cmd->add_option("--val-fraction", o->val_fraction, "Share of documents held out")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Split seed")->capture_default_str();
  cmd->add_option("--suggest-budgets", o->suggest_ms,
                  "Task data: print [[budgets]] for a config, batch 1 at the p90 prompt and completion lengths with this "
                  "limit in ms, and a p99 tail");
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->callback([o] {
    auto file = std::make_shared<TokenFile>(o->file);
    if (o->suggest_ms != 0 || file->has_completion_mask()) {
      const TaskStats st = task_length_stats(*file);
      if (o->suggest_ms != 0) {
        std::cout << suggest_budgets_toml(st, o->suggest_ms, o->file);
        return;
      }
    }
    TokenDataset ds(file, o->val_fraction, o->seed);
    json j = {{"file", o->file},
                    {"tokens", file->num_tokens()},
                    {"docs", file->num_docs()},
                    {"vocab_size", file->vocab_size()},
                    {"token_bytes", file->token_bytes()},
                    {"meta", file->meta()},
                    {"train", {{"docs", ds.train().docs}, {"tokens", ds.train().tokens}, {"bytes", ds.train().bytes}}},
                    {"val", {{"docs", ds.val().docs}, {"tokens", ds.val().tokens}, {"bytes", ds.val().bytes}}},
                    {"unigram_bits_per_token", ds.unigram_bits_per_token()},
                    {"unigram_bits_per_byte", ds.unigram_bits_per_byte()}};
    std::optional<TaskStats> st;
    if (file->has_completion_mask()) st = task_length_stats(*file);
    if (st) j["task_lengths"] = st->to_json();
    if (o->json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("%s: %s tokens in %s documents, vocabulary %lld (%lld-byte tokens)\n", o->file.c_str(),
                with_commas(file->num_tokens()).c_str(), with_commas(file->num_docs()).c_str(),
                static_cast<long long>(file->vocab_size()), static_cast<long long>(file->token_bytes()));
    std::printf("split (seed %llu, val fraction %.3g): train %lld docs / %s tokens, val %lld docs / %s tokens\n",
                static_cast<unsigned long long>(o->seed), o->val_fraction, static_cast<long long>(ds.train().docs),
                with_commas(ds.train().tokens).c_str(), static_cast<long long>(ds.val().docs),
                with_commas(ds.val().tokens).c_str());
    std::printf("unigram entropy of the training split%s: %.4f bits/token, %.4f bits/byte\n",
                st ? " (completion tokens)" : "", ds.unigram_bits_per_token(), ds.unigram_bits_per_byte());
    if (st) {
      auto line = [](const char* what, const LengthStats& l) {
        std::printf("%-10s tokens: p50 %lld, p90 %lld, p99 %lld, max %lld, mean %.1f\n", what, static_cast<long long>(l.p50),
                    static_cast<long long>(l.p90), static_cast<long long>(l.p99), static_cast<long long>(l.max), l.mean);
      };
      std::printf("task records: %lld (completion = the answer and its end marker %s)\n", static_cast<long long>(st->records),
                  "<|end|>");
      line("prompt", st->prompt);
      line("completion", st->completion);
    }
  });
}

}  // namespace

void add_data_command(CLI::App& app) {
  auto* data = app.add_subcommand("data", "Training data: prepare token files, train a tokenizer, inspect");
  data->require_subcommand(1);
  add_prepare(*data);
  add_tokenizer(*data);
  add_info(*data);
}

}  // namespace flashnas::cli
