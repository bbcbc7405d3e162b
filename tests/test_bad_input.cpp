// Damaged files and hostile names against the flashnas binary, table-driven:
// every case must exit 2 (never a signal, never 0 or 1), name the file or flag
// in its message, and leave the files it was given exactly as they were.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>
#include <functional>

#include "common/files.h"
#include "common/db.h"
#include "study/study_store.h"
#include "tests/search_fixture.h"
#include "train/token_file.h"

namespace flashnas::test {
namespace {

namespace fs = std::filesystem;
const std::string kArch = std::string(test::source_dir()) + "/configs/arch/demo-tiny.json";

// Overwrites `n` bytes of `path` at `offset` with `byte`.
void poke(const fs::path& path, size_t offset, size_t n, char byte) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(std::streamoff(offset));
  const std::string bytes(n, byte);
  f.write(bytes.data(), std::streamsize(n));
}

// The byte offset of a token file's first token.
size_t first_token_offset(const fs::path& path) {
  TokenFile f(path);
  std::ifstream in(path, std::ios::binary);
  uint64_t meta_len = 0;
  in.seekg(40);
  in.read(reinterpret_cast<char*>(&meta_len), 8);
  size_t pos = 48 + meta_len;
  pos += (8 - pos % 8) % 8;
  return pos + 8 * size_t(f.num_docs() + 1) + 8 * size_t(f.num_docs());
}

// `search` with the study's config edited (one `from` replaced by `to`) and
// written as bad.toml beside it.
std::vector<std::string> with_config(const Study& st, const std::string& from, const std::string& to) {
  std::string text = read_file(st.config);
  const auto pos = text.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  text.replace(pos, from.size(), to);
  st.dir.write("bad.toml", text);
  auto a = st.search_args();
  for (size_t i = 0; i + 1 < a.size(); ++i) {
    if (a[i] == "--config") a[i + 1] = (st.dir / "bad.toml").string();
  }
  return a;
}

// `bench` of the tiny ArchSpec with extra flags.
std::vector<std::string> bench_args(const std::vector<std::string>& extra) {
  std::vector<std::string> a = {"bench", "--arch", kArch, "--workload", "batch=1,prompt=8,generate=2"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// Runs one SQL statement on a study database (to damage it as a user's disk might).
void exec_sql(const std::string& db, const std::string& sql) {
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(h);
}

struct Case {
  std::string name;
  // Prepares the damaged input in the study folder and returns the arguments.
  std::function<std::vector<std::string>(const Study&)> args;
  std::vector<std::string> message;  // substrings the error must hold
};

std::vector<Case> cases() {
  auto unrelated = [](const Study& st) {
    const std::string p = (st.dir / "notes.sqlite").string();
    {
      sqlite3* db = nullptr;
      sqlite3_open(p.c_str(), &db);
      sqlite3_exec(db, "CREATE TABLE notes(id INTEGER PRIMARY KEY, text TEXT); INSERT INTO notes(text) VALUES('mine')",
                   nullptr, nullptr, nullptr);
      sqlite3_close(db);
    }
    return p;
  };
  auto damaged_tokens = [](const Study& st, bool vocab_zero) {
    const fs::path data = st.dir / "bad.tokens";
    fs::copy_file(st.dir / "data.tokens", data);
    if (vocab_zero) {
      poke(data, 16, 8, 0);
    } else {
      poke(data, first_token_offset(data) + 20000, 4096, char(0xff));  // garbage in the middle
    }
    return data.string();
  };
  return {
      {"search --study ../..", [](const Study& st) { return st.search_args("../.."); }, {"--study \"../..\"", "it names a folder"}},
      {"search --study ./../..", [](const Study& st) { return st.search_args("./../.."); }, {"--study \"./../..\""}},
      {"search --study \"\"", [](const Study& st) { return st.search_args(""); }, {"--study \"\""}},
      {"search --study a/b", [](const Study& st) { return st.search_args("a/b"); }, {"--study \"a/b\""}},
      {"frontier on someone else's SQLite file",
       [=](const Study& st) { return std::vector<std::string>{"frontier", "--db", unrelated(st), "--study", "s"}; },
       {"notes.sqlite: not a flashnas database (it holds the tables notes)"}},
      {"latency on someone else's SQLite file",
       [=](const Study& st) {
         return std::vector<std::string>{"latency", "--db", unrelated(st), "--arch", kArch, "--workload",
                                         "batch=1,prompt=16,generate=8"};
       },
       {"notes.sqlite: not a flashnas database"}},
      {"search --db someone else's SQLite file",
       [=](const Study& st) {
         auto a = st.search_args();
         for (size_t i = 0; i + 1 < a.size(); ++i) {
           if (a[i] == "--db") a[i + 1] = unrelated(st);
         }
         a.insert(a.end(), {"--lut", st.db});
         return a;
       },
       {"notes.sqlite: not a flashnas database"}},
      {"frontier on an empty file",
       [](const Study& st) {
         st.dir.write("empty.db", "");
         return std::vector<std::string>{"frontier", "--db", (st.dir / "empty.db").string(), "--study", "s"};
       },
       {"empty.db: holds no flashnas data"}},
      {"frontier on a file that is not SQLite",
       [](const Study& st) {
         return std::vector<std::string>{"frontier", "--db", (st.dir / "data.tokens").string(), "--study", "s"};
       },
       {"not a flashnas database (SQLite says: file is not a database)"}},
      {"data prepare --out the input",
       [](const Study& st) {
         st.dir.write("x.txt", "some text that must survive\n");
         const std::string x = (st.dir / "x.txt").string();
         return std::vector<std::string>{"data", "prepare", "--input", x, "--out", x};
       },
       {"--out", "x.txt: is the input itself"}},
      {"data prepare --out an existing file",
       [](const Study& st) {
         st.dir.write("x.txt", "some text\n");
         st.dir.write("notes.md", "keep me\n");
         return std::vector<std::string>{"data", "prepare", "--input", (st.dir / "x.txt").string(), "--out",
                                         (st.dir / "notes.md").string()};
       },
       {"notes.md: exists and is not a flashnas token file"}},
      {"data info, vocabulary 0 in the header",
       [=](const Study& st) { return std::vector<std::string>{"data", "info", damaged_tokens(st, true)}; },
       {"bad.tokens: vocabulary size 0 in the header"}},
      {"data info, token ids past the vocabulary",
       [=](const Study& st) { return std::vector<std::string>{"data", "info", damaged_tokens(st, false)}; },
       {"bad.tokens: token ", "outside the vocabulary of 256"}},
      // Values out of range: refused before anything runs or is written.
      {"search, [train] lr = nan",
       [=](const Study& st) { return with_config(st, "tokens = 1024", "tokens = 1024\nlr = nan"); },
       {"bad.toml: field \"train.lr\": must be a positive finite number, got nan"}},
      {"search, [search] population = 4294967297 (beyond an int)",
       [=](const Study& st) { return with_config(st, "population = 4", "population = 4294967297"); },
       {"bad.toml: field \"search.population\": must be an integer in [1, 1000000], got 4294967297"}},
      {"search, [train] threads beyond the CPUs",
       [=](const Study& st) { return with_config(st, "threads = 1", "threads = 100000"); },
       {"bad.toml: field \"train.threads\": must be an integer in [0, "}},
      {"bench --threads beyond the CPUs",
       [](const Study&) { return bench_args({"--threads", "100000"}); },
       {"--threads: 100000 threads; this process may run on "}},
      {"bench --threads -1", [](const Study&) { return bench_args({"--threads", "-1"}); }, {"--threads: -1 threads"}},
      {"bench --device with an index beyond an int",
       [](const Study&) { return bench_args({"--device", "cuda:99999999999"}); },
       {"--device cuda:99999999999: device index out of range"}},
      {"search, an op expression with a number beyond int64",
       [=](const Study& st) {
         return with_config(st, "n_heads = \"d_model / 16\"", "n_heads = \"d_model / 99999999999999999999\"");
       },
       {"99999999999999999999 is out of range"}},
      {"bench --min-count -3", [](const Study&) { return bench_args({"--min-count", "-3"}); },
       {"--min-count: must be >= 1, got -3"}},
      {"profile --max-minutes nan",
       [](const Study& st) {
         return std::vector<std::string>{"profile", "--space", st.config, "--db", (st.dir / "new.db").string(),
                                         "--max-minutes", "nan"};
       },
       {"--max-minutes: must be a finite number >= 0"}},
      {"profile --ops bogus",
       [](const Study& st) {
         return std::vector<std::string>{"profile", "--space", st.config, "--db", (st.dir / "new.db").string(),
                                         "--ops", "bogus"};
       },
       {"--ops: \"bogus\" is not an operator of this plan; it has "}},
      {"profile --space with --dtype other than the config's [latency] dtype",
       [](const Study& st) {
         std::string text = read_file(st.config);
         text += "\n[latency]\ndtype = \"bfloat16\"\n";
         st.dir.write("bf.toml", text);
         return std::vector<std::string>{"profile", "--space", (st.dir / "bf.toml").string(), "--db",
                                         (st.dir / "new.db").string(), "--dtype", "float32"};
       },
       {"--dtype float32: ", "bf.toml prices candidates with [latency] dtype = \"bfloat16\""}},
      {"export --trial -5",
       [](const Study& st) {
         return std::vector<std::string>{"export", "--db", st.db, "--study", "s", "--trial", "-5", "--out",
                                         (st.dir / "model").string()};
       },
       {"--trial: must be a trial number >= 0, got -5"}},
      {"arch show, d_model 1e9",
       [](const Study& st) {
         st.dir.write("big.json", R"({"d_model": 1000000000, "layers": [{"type": "ffn"}]})");
         return std::vector<std::string>{"arch", "show", (st.dir / "big.json").string()};
       },
       {"big.json: field \"d_model\": must be an integer in [1, 1048576], got 1000000000"}},
      {"arch show --context 1e17",
       [](const Study&) { return std::vector<std::string>{"arch", "show", kArch, "--context", "100000000000000000"}; },
       {"--context: must be 0..4294967296 tokens"}},
      {"arch show, rope_theta 1e999",
       [](const Study& st) {
         st.dir.write("rt.json", R"({"d_model": 64, "layers": [{"type": "attn", "rope_theta": 1e999}]})");
         return std::vector<std::string>{"arch", "show", (st.dir / "rt.json").string()};
       },
       {"rt.json: number overflow parsing '1e999'"}},
  };
}

TEST(BadInput, EveryCaseExitsTwoNamesTheCulpritAndChangesNothing) {
  const auto all = cases();
  for (const auto& c : all) {
    SCOPED_TRACE(c.name);
    Study st;
    const auto args = c.args(st);
    const auto before = file_tree(st.dir.path());
    const auto r = run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    for (const auto& m : c.message) EXPECT_NE(r.err.find(m), std::string::npos) << "wanted \"" << m << "\" in: " << r.err;
    EXPECT_EQ(file_tree(st.dir.path()), before) << "the command changed files";
  }
  EXPECT_EQ(all.size(), 28u);
}

// A corrupt token file is the input's fault, not the candidates': it is
// refused before the study is created (every id is checked when the data is
// opened), and once the file is repaired the same command runs to the end.
TEST(BadInput, ACorruptTokenFileIsRefusedBeforeTheStudyAndARepairedOneRuns) {
  Study st;
  const fs::path data = st.dir / "data.tokens";
  const std::string good = read_file(data);
  poke(data, first_token_offset(data) + 30000, 4096, char(0xff));
  const auto before = file_tree(st.dir.path());
  auto r = run_cli(st.search_args());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("data.tokens: token "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("outside the vocabulary of 256"), std::string::npos) << r.err;
  EXPECT_EQ(file_tree(st.dir.path()), before) << "no study may be created from a corrupt file";
  write_file_atomic(data, good);
  // The repaired file starts the study (stopped at once here, by SIGTERM at
  // the first claim); a damaged study row is named too, and repairing it lets
  // the study go on.
  r = run_cli(st.search_args(), {"env", "FLASHNAS_FAULT=term-claim:1"});
  ASSERT_EQ(r.exit_code, 143) << r.err;
  exec_sql(st.db, "UPDATE studies SET rng_state = 'x' || rng_state");
  r = run_cli(st.search_args());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("study \"s\", column rng_state: \"x"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("is not a random-number state"), std::string::npos) << r.err;
  exec_sql(st.db, "UPDATE studies SET rng_state = substr(rng_state, 2)");
  r = run_cli(st.search_args());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM trials WHERE status = 'done' AND reused_from IS NULL"), 8);
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM studies WHERE finished_at IS NOT NULL"), 1);
  // A trial whose stored ArchSpec is damaged JSON: export names the trial and column.
  const int64_t best = scalar(st.db, "SELECT number FROM trials WHERE status = 'done' ORDER BY loss LIMIT 1");
  exec_sql(st.db, "UPDATE trials SET arch = substr(arch, 1, 20) WHERE number = " + std::to_string(best));
  r = run_cli({"export", "--db", st.db, "--study", "s", "--trial", std::to_string(best), "--out", (st.dir / "m").string(),
               "--no-measure"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("trial " + std::to_string(best) + ", column arch: "), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(st.dir / "m"));
}

// A study whose config names its data by a relative path reads it from the
// folder the search ran in; export --train-tokens run elsewhere says so (and
// makes nothing), and run there it trains.
TEST(BadInput, ExportTrainTokensNamesTheFolderARelativeDataPathIsReadFrom) {
  Study st;
  std::string text = read_file(st.config);
  const std::string abs = (st.dir / "data.tokens").string();
  ASSERT_NE(text.find(abs), std::string::npos);
  text.replace(text.find(abs), abs.size(), "data.tokens");
  st.dir.write("rel.toml", text);
  auto args = st.search_args();
  args[2] = (st.dir / "rel.toml").string();
  auto r = run_cli(args, {"env", "--chdir=" + st.dir.path().string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  TempDir elsewhere;
  const std::vector<std::string> ex = {"export", "--db", st.db, "--study", "s", "--train-tokens", "256", "--no-measure",
                                       "--threads", "1", "--out", (st.dir / "m").string()};
  r = run_cli(ex, {"env", "--chdir=" + elsewhere.path().string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("train.data \"data.tokens\" is a relative path and is not in " + elsewhere.path().string()),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("run export from the folder the search ran in"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(st.dir / "m"));
  r = run_cli(ex, {"env", "--chdir=" + st.dir.path().string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(st.dir / "m" / "model.safetensors"));
}

// Without --dtype, profile --space measures in the config's [latency] dtype:
// the table its search will look for (it used to measure float32 and call the
// bfloat16 table complete, and the search sent the user back to profile).
TEST(BadInput, ProfileOfASpaceMeasuresTheConfigsLatencyDtype) {
  Study st;
  std::string text = read_file(st.config);
  text += "\n[latency]\ndtype = \"bfloat16\"\n";
  st.dir.write("bf.toml", text);
  const std::string db = (st.dir / "bf.db").string();
  const auto r = run_cli({"profile", "--space", (st.dir / "bf.toml").string(), "--db", db, "--ops", "ffn", "--rounds",
                          "1", "--threads", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GT(scalar(db, "SELECT COUNT(*) FROM lut_entries WHERE dtype = 'bfloat16'"), 0);
  EXPECT_EQ(scalar(db, "SELECT COUNT(*) FROM lut_entries WHERE dtype <> 'bfloat16'"), 0);
}

}  // namespace
}  // namespace flashnas::test
