// Every command that reads a kind of file, against every way that file can be
// damaged: the matrix (file kinds x damages x the commands reading each kind)
// must exit 2 (never a signal, a crash or a success on garbage), name the
// damaged file in its message, and leave the folder exactly as it was.
//
// The kinds are the files flashnas reads: token files, ArchSpecs, search
// configs, databases (latency table and study), an exported model's
// safetensors and config.json, SentencePiece models, and task records (JSONL
// with prompt/completion and chat records). The damages: empty,
// cut in half, 64 bytes of garbage in the middle, and a wrong version (the
// token file's and the databases' version fields) or, for kinds without one,
// a file of another kind in its place.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <fstream>
#include <functional>

#include "common/files.h"
#include "common/db.h"
#include "tests/search_fixture.h"

namespace flashnas::test {
namespace {

namespace fs = std::filesystem;

// The good files, made once: a study folder whose search ran (database with
// the latency table and study "s"), its best trial exported, a SentencePiece
// model trained on the corpus' text.
class Corpus {
 public:
  static const Corpus& get() {
    static const Corpus c;
    return c;
  }
  // Copies every good file into `dir` (the config pointing at dir's token file).
  void copy_to(const fs::path& dir) const {
    fs::copy(root_.path(), dir, fs::copy_options::recursive);
    std::ofstream(dir / "space.toml") << tiny_config((dir / "data.tokens").string());
  }

 private:
  Corpus() {
    Study st;
    auto r = run_cli(st.search_args());
    if (r.exit_code != 0) throw std::runtime_error("corpus search failed: " + r.err);
    r = run_cli({"export", "--db", st.db, "--study", "s", "--out", (root_ / "model").string(), "--no-measure"});
    if (r.exit_code != 0) throw std::runtime_error("corpus export failed: " + r.err);
    r = run_cli({"data", "tokenizer", "--input", (st.dir / "text").string(), "--vocab-size", "290", "--out",
                 (root_ / "spm.model").string()});
    if (r.exit_code != 0) throw std::runtime_error("corpus tokenizer failed: " + r.err);
    fs::copy(st.dir / "text", root_ / "text", fs::copy_options::recursive);
    fs::copy_file(st.dir / "data.tokens", root_ / "data.tokens");
    fs::copy_file(st.db, root_ / "study.db");
    fs::copy(st.db + ".runs", root_ / "study.db.runs", fs::copy_options::recursive);  // the trials' weights
    {  // an architecture the latency table covers: the study's first trained trial
      Db db(st.db, Access::read_only);
      Stmt q(db, "SELECT arch FROM trials WHERE status = 'done' ORDER BY number LIMIT 1");
      if (!q.step()) throw std::runtime_error("corpus study has no trained trial");
      std::ofstream(root_ / "arch.json") << q.text(0);
    }
    std::string arch = read_file(std::string(test::source_dir()) + "/configs/arch/demo-tiny.json");
    replace_once(arch, "\"vocab_size\": 256", "\"vocab_size\": 512");
    std::ofstream(root_ / "arch512.json") << arch;
    // Task records: prompt/completion and chat, each line long enough that a
    // cut in half or 64 bytes of garbage land inside a record.
    {
      std::ofstream f(root_ / "calls.jsonl");
      for (int i = 0; i < 12; ++i) {
        const std::string n = std::to_string(i);
        if (i % 2) {
          f << R"({"prompt": "Weather in city )" << n << R"( tomorrow? Answer with a call.", "completion": "{\"name\": \"get_weather\", \"args\": {\"city\": \"c)"
            << n << R"(\", \"days\": 1}}"})" << "\n";
        } else {
          f << R"({"messages": [{"role": "system", "content": "You call tools."}, {"role": "user", "content": "Book table )" << n
            << R"( for two at eight."}, {"role": "assistant", "content": "{\"name\": \"book\", \"args\": {\"table\": )" << n
            << R"(, \"people\": 2}}"}]})" << "\n";
        }
      }
    }
    // A token file made with the SentencePiece model, which travels beside it.
    r = run_cli({"data", "prepare", "--input", (root_ / "text").string(), "--out", (root_ / "spm.tokens").string(),
                 "--tokenizer", (root_ / "spm.model").string()});
    if (r.exit_code != 0) throw std::runtime_error("corpus prepare failed: " + r.err);
  }
  TempDir root_;
};

enum class Damage { empty, half, garbage, version };
const char* damage_name(Damage d) {
  switch (d) {
    case Damage::empty: return "empty";
    case Damage::half: return "cut in half";
    case Damage::garbage: return "garbage in the middle";
    case Damage::version: return "wrong version or another kind of file";
  }
  return "";
}

struct Kind {
  std::string name;
  std::string file;  // relative to the case folder
  // Damage::version: writes the wrong version into `path`, or returns false
  // when the kind has no version (then another kind's file replaces it).
  std::function<bool(const fs::path& path)> wrong_version;
};

void damage(const Kind& kind, const fs::path& dir, Damage d) {
  const fs::path p = dir / kind.file;
  std::string bytes = read_file(p);
  switch (d) {
    case Damage::empty: bytes.clear(); break;
    case Damage::half: bytes.resize(bytes.size() / 2); break;
    case Damage::garbage: {
      // In a database, at the start of the middle page (its header): SQLite
      // never reads a page's free space, where garbage would change nothing.
      const size_t at = kind.file.ends_with(".db") ? bytes.size() / 2 / 4096 * 4096 : bytes.size() / 2;
      bytes.replace(at, 64, 64, char(0xff));
      break;
    }
    case Damage::version:
      if (kind.wrong_version(p)) return;
      // A text kind gets a binary file, a binary kind a text one.
      bytes = read_file(dir / (kind.file.ends_with(".json") || kind.file.ends_with(".toml") ? "data.tokens" : "space.toml"));
      break;
  }
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

void set_sql(const fs::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  sqlite3_open(db.c_str(), &h);
  sqlite3_exec(h, sql.c_str(), nullptr, nullptr, nullptr);
  sqlite3_close(h);
}

std::vector<Kind> kinds() {
  auto none = [](const fs::path&) { return false; };
  return {
      {"token file", "data.tokens",
       [](const fs::path& p) {
         std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
         f.seekp(8);
         const uint32_t v = 99;
         f.write(reinterpret_cast<const char*>(&v), 4);
         return true;
       }},
      {"ArchSpec", "arch.json", none},
      {"search config", "space.toml", none},
      {"database", "study.db",
       [](const fs::path& p) {
         set_sql(p, "UPDATE meta SET value = '99' WHERE key IN ('schema_version', 'study_schema_version')");
         return true;
       }},
      {"model weights", "model/model.safetensors", none},
      {"model config", "model/config.json", none},
      {"SentencePiece model", "spm.model", none},
      {"SentencePiece model beside a token file", "spm.tokens.tokenizer.model", none},
      {"task records", "calls.jsonl", none},
  };
}

struct Reader {
  std::string kind;
  std::string name;
  std::function<std::vector<std::string>(const fs::path& dir)> args;
  // A command that creates its database takes an empty file for a new one.
  bool empty_is_new = false;
  // Whether garbage in the middle can be seen. A SentencePiece model the user
  // names has no checksum, and its middle is the normalizer's table, opaque
  // bytes that parse as a different, valid model; the model carried beside a
  // token file is checked against the SHA-256 recorded there.
  bool sees_garbage = true;
  // Whether the good corpus is run through it first (it must succeed there,
  // or the damaged cases would prove nothing).
  bool baseline = true;
};

// The synthetic latency table's device (tests/search_fixture.cpp).
const std::string kSyntheticDevice = "cpu|synthetic|threads=1|torch=test|build=";

std::vector<std::string> train_args(const fs::path& dir, const std::string& arch, const std::string& data,
                                    const std::vector<std::string>& extra = {}) {
  std::vector<std::string> a = {"train", "--arch", (dir / arch).string(), "--data", (dir / data).string(),
                                "--tokens", "256", "--batch-size", "2", "--seq-len", "16", "--threads", "1",
                                "--quiet", "--out", (dir / "run").string()};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

std::vector<Reader> readers() {
  auto p = [](const fs::path& dir, const char* f) { return (dir / f).string(); };
  const std::string workload = "batch=1,prompt=16,generate=8";
  std::vector<Reader> r = {
      {"token file", "data info", [=](auto d) { return std::vector<std::string>{"data", "info", p(d, "data.tokens")}; }},
      {"token file", "train", [=](auto d) { return train_args(d, "arch.json", "data.tokens"); }},
      {"token file", "search", [=](auto d) {
         return std::vector<std::string>{"search", "--config", p(d, "space.toml"), "--db", p(d, "study.db"), "--study", "t", "--threads", "1"};
       }},
      {"ArchSpec", "arch show", [=](auto d) { return std::vector<std::string>{"arch", "show", p(d, "arch.json")}; }},
      {"ArchSpec", "arch canon", [=](auto d) { return std::vector<std::string>{"arch", "canon", p(d, "arch.json")}; }},
      {"ArchSpec", "latency", [=](auto d) {
         return std::vector<std::string>{"latency", "--db", p(d, "study.db"), "--arch", p(d, "arch.json"), "--workload", workload,
                                         "--lut-device", kSyntheticDevice};
       }},
      {"ArchSpec", "bench", [=](auto d) {
         return std::vector<std::string>{"bench", "--arch", p(d, "arch.json"), "--workload", "batch=1,prompt=8,generate=2",
                                         "--min-count", "1", "--min-seconds", "0", "--threads", "1"};
       }},
      {"ArchSpec", "train", [=](auto d) { return train_args(d, "arch.json", "data.tokens"); }},
      {"search config", "search", [=](auto d) {
         return std::vector<std::string>{"search", "--config", p(d, "space.toml"), "--db", p(d, "study.db"), "--study", "t", "--threads", "1"};
       }},
      {"search config", "profile", [=](auto d) {
         return std::vector<std::string>{"profile", "--space", p(d, "space.toml"), "--db", p(d, "new.db"), "--threads", "1",
                                         "--max-minutes", "0.005"};
       }},
      {"search config", "proxy", [=](auto d) {
         return std::vector<std::string>{"proxy", "--config", p(d, "space.toml"), "--db", p(d, "proxy.db"), "--archs", "4",
                                         "--short", "64", "--long", "128", "--threads", "1"};
       }},
      {"search config", "bench-table", [=](auto d) {
         return std::vector<std::string>{"bench-table", "--config", p(d, "space.toml"), "--db", p(d, "study.db"), "--archs", "2", "--fidelities", "256,512",
                                         "--threads", "1"};
       }},
      {"SentencePiece model", "data prepare", [=](auto d) {
         return std::vector<std::string>{"data", "prepare", "--input", p(d, "text"), "--out", p(d, "new.tokens"), "--tokenizer", p(d, "spm.model")};
       }, false, false},
      {"SentencePiece model", "train", [=](auto d) { return train_args(d, "arch512.json", "text", {"--tokenizer", p(d, "spm.model")}); },
       false, false},
      {"SentencePiece model beside a token file", "train", [=](auto d) { return train_args(d, "arch512.json", "spm.tokens"); }},
  };
  r.push_back({"task records", "data prepare", [=](auto d) {
                 return std::vector<std::string>{"data", "prepare", "--input", p(d, "calls.jsonl"), "--out", p(d, "new.tokens")};
               }});
  r.push_back({"task records", "train", [=](auto d) { return train_args(d, "arch.json", "calls.jsonl"); }});
  r.push_back({"task records", "eval", [=](auto d) {
                 return std::vector<std::string>{"eval", "--model", p(d, "model"), "--data", p(d, "calls.jsonl"), "--threads", "1",
                                                 "--generate", "2"};
               }});
  r.push_back({"database", "frontier", [=](auto d) { return std::vector<std::string>{"frontier", "--db", p(d, "study.db"), "--study", "s"}; }});
  r.push_back({"database", "export", [=](auto d) {
                 return std::vector<std::string>{"export", "--db", p(d, "study.db"), "--study", "s", "--out", p(d, "m"), "--no-measure"};
               }});
  r.push_back({"database", "search", [=](auto d) {
                 return std::vector<std::string>{"search", "--config", p(d, "space.toml"), "--db", p(d, "study.db"), "--study", "t", "--threads", "1"};
               }});
  r.push_back({"database", "latency", [=](auto d) {
                 return std::vector<std::string>{"latency", "--db", p(d, "study.db"), "--arch", p(d, "arch.json"), "--workload", workload,
                                         "--lut-device", kSyntheticDevice};
               }});
  r.push_back({"database", "profile", [=](auto d) {
                 return std::vector<std::string>{"profile", "--space", p(d, "space.toml"), "--db", p(d, "study.db"), "--threads", "1",
                                                 "--max-minutes", "0.005"};
               }, true});
  for (const char* kind : {"model weights", "model config"}) {
    r.push_back({kind, "generate", [=](auto d) {
                   return std::vector<std::string>{"generate", "--model", p(d, "model"), "--prompt", "the quick", "--tokens", "2", "--threads", "1"};
                 }});
  }
  return r;
}

TEST(DamagedInputs, EveryReaderOfEveryDamagedFileExitsTwoNamesItAndChangesNothing) {
  const Corpus& corpus = Corpus::get();

  const auto all_kinds = kinds();
  const auto all_readers = readers();
  int cases = 0, skipped = 0;
  for (const auto& reader : all_readers) {
    if (!reader.baseline) continue;
    SCOPED_TRACE("the good corpus, " + reader.kind + ", " + reader.name);
    TempDir dir;
    corpus.copy_to(dir.path());
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = run_cli(reader.args(dir.path()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::printf("good corpus, %s, %s: %.1f s\n", reader.kind.c_str(), reader.name.c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  for (const auto& kind : all_kinds) {
    int kind_readers = 0;
    for (const auto& reader : all_readers) {
      if (reader.kind != kind.name) continue;
      ++kind_readers;
      for (Damage d : {Damage::empty, Damage::half, Damage::garbage, Damage::version}) {
        if ((d == Damage::empty && reader.empty_is_new) || (d == Damage::garbage && !reader.sees_garbage)) {
          ++skipped;
          continue;
        }
        SCOPED_TRACE(kind.name + " " + damage_name(d) + ", " + reader.name);
        TempDir dir;
        corpus.copy_to(dir.path());
        damage(kind, dir.path(), d);
        const auto args = reader.args(dir.path());
        const auto before = file_tree(dir.path());
        const auto r = run_cli(args);
        ++cases;
        std::string line;
        for (const auto& a : args) line += " " + a;
        EXPECT_EQ(r.exit_code, 2) << "flashnas" << line << "\n" << r.err;
        EXPECT_NE(r.err.find(fs::path(kind.file).filename().string()), std::string::npos)
            << "wanted " << kind.file << " named in: " << r.err;
        EXPECT_EQ(file_tree(dir.path()), before) << "the command changed files";
      }
    }
    EXPECT_GT(kind_readers, 0) << kind.name << " has no reader in the matrix";
  }
  std::printf("damaged-input matrix: %zu file kinds, %zu (kind, command) readers, %d cases (%d left out, see Reader)\n",
              all_kinds.size(), all_readers.size(), cases, skipped);
  EXPECT_EQ(skipped, 3);
  EXPECT_EQ(cases + skipped, 4 * int(all_readers.size()));
}

}  // namespace
}  // namespace flashnas::test
