// `flashnas data`: prepare token files, train a SentencePiece tokenizer, inspect token files.
#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "common/error.h"
#include "train/corpus.h"
#include "train/data_report.h"
#include "train/task_stats.h"
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
    const PrepareSummary summary = prepare_token_file(o->input, o->out, o->tokenizer, o->max_doc_bytes, o->skip_bad);
    std::cout << (o->json ? summary.to_json().dump(2) + "\n" : summary.text());
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
    if (o->suggest_ms != 0) {
      std::cout << suggest_budgets_toml(task_length_stats(TokenFile(o->file)), o->suggest_ms, o->file);
      return;
    }
    const TokenFileInfo info = token_file_info(o->file, o->val_fraction, o->seed);
    std::cout << (o->json ? info.to_json().dump(2) + "\n" : info.text());
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
