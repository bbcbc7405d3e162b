// Bad input that takes more than one command: a corrupt token file refused
// before the study and a repaired one run, a relative data path named, the
// config's latency dtype kept. The one-command cases (damaged files, hostile
// names, values out of range) are data: tests/cases/bad_input.toml.
#include <gtest/gtest.h>


#include "common/files.h"
#include "common/db.h"
#include "study/study_store.h"
#include "tests/search_fixture.h"

namespace flashnas::test {
namespace {

namespace fs = std::filesystem;

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
  test::exec_sql(st.db, "UPDATE studies SET rng_state = 'x' || rng_state");
  r = run_cli(st.search_args());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("study \"s\", column rng_state: \"x"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("is not a random-number state"), std::string::npos) << r.err;
  test::exec_sql(st.db, "UPDATE studies SET rng_state = substr(rng_state, 2)");
  r = run_cli(st.search_args());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM trials WHERE status = 'done' AND reused_from IS NULL"), 8);
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM studies WHERE finished_at IS NOT NULL"), 1);
  // A trial whose stored ArchSpec is damaged JSON: export names the trial and column.
  const int64_t best = scalar(st.db, "SELECT number FROM trials WHERE status = 'done' ORDER BY loss LIMIT 1");
  test::exec_sql(st.db, "UPDATE trials SET arch = substr(arch, 1, 20) WHERE number = " + std::to_string(best));
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
