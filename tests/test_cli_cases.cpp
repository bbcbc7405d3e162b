// The command-line cases of tests/cases/*.toml, read by this one driver: each
// case is a command of the flashnas binary with the exit code it must give,
// the text its stderr and stdout must hold and, by default, the promise that
// it changes no file in its folder. Adding a case is adding a [[case]] table;
// every case is its own test (CliCases/<file>_<n>_<name>).
//
// A case file:
//   fixture = "study" | "none"   the folder each case runs in (default "none"):
//                                "study" is a tiny study (space.toml, study.db
//                                with its latency table, data.tokens); "none"
//                                an empty folder
//   [[case]]
//   name = "..."                 what is being tried (required, unique)
//   setup = [[VERB, ARGS...]]    prepares the input, before the folder is
//                                snapshotted (verbs below)
//   args = ["...", ...]          the command line after "flashnas" (required)
//   exit = 2                     the exit code (default 2)
//   err = ["...", ...]           substrings stderr must hold, each in order of listing
//   out = ["...", ...]           substrings stdout must hold
//   unchanged = true             the folder must be exactly as before (default true)
// Placeholders in setup and args: {dir} the folder, {config} and {db} the
// study's config and database, {arch} configs/arch/demo-tiny.json.
// Setup verbs (paths are relative to the folder, or placeholders):
//   ["write", PATH, TEXT]             write a file
//   ["sqlite", PATH, SQL]             run SQL on a SQLite file (made if absent)
//   ["copy", FROM, TO]                copy a file
//   ["edit", FROM, TO, OLD, NEW]      copy FROM to TO with OLD (which must
//                                     occur) replaced once by NEW
//   ["append", FROM, TO, TEXT]        copy FROM to TO with TEXT appended
//   ["poke", PATH, OFFSET, N, BYTE]   overwrite N bytes at OFFSET with BYTE
//   ["poke-tokens", PATH, OFFSET, N, BYTE]  the same, OFFSET counted from a
//                                     token file's first token
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <set>

#include "common/error.h"
#include "common/files.h"
#include "common/toml_io.h"
#include "tests/search_fixture.h"

namespace flashnas::test {
namespace {

namespace fs = std::filesystem;

struct CliCase {
  std::string file;  // the case file's stem
  size_t index = 0;  // 1-based within the file
  std::string fixture;
  json spec;             // the [[case]] table
  std::string problem;   // set when the file could not be read
};

// What gtest prints for a case (its file and number, not its bytes).
void PrintTo(const CliCase& c, std::ostream* os) { *os << c.file << ".toml case " << c.index; }

std::vector<CliCase> load_cases() {
  std::vector<CliCase> all;
  const fs::path dir = fs::path(source_dir()) / "tests" / "cases";
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".toml") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    try {
      const json doc = load_toml_file(f);
      const std::string fixture = doc.value("fixture", std::string("none"));
      if (fixture != "none" && fixture != "study") {
        throw InputError(f.string() + ": fixture \"" + fixture + "\": allowed: \"none\", \"study\"");
      }
      if (!doc.contains("case") || !doc.at("case").is_array() || doc.at("case").empty()) {
        throw InputError(f.string() + ": no [[case]] tables");
      }
      size_t i = 0;
      for (const auto& c : doc.at("case")) all.push_back({f.stem().string(), ++i, fixture, c, ""});
    } catch (const std::exception& e) {
      all.push_back({f.stem().string(), 0, "none", json::object(), e.what()});
    }
  }
  return all;
}

// A gtest-safe name: the file, the case's number and its words.
std::string case_name(const CliCase& c) {
  std::string name = c.file + "_" + (c.index < 10 ? "0" : "") + std::to_string(c.index) + "_";
  const std::string words = c.spec.value("name", std::string("unreadable"));
  bool sep = false;
  for (const char ch : words) {
    if (std::isalnum(static_cast<unsigned char>(ch))) {
      if (sep && name.back() != '_') name += '_';
      name += ch;
      sep = false;
    } else {
      sep = true;
    }
    if (name.size() > 80) break;
  }
  for (char& ch : name) {
    if (ch == '-') ch = '_';
  }
  return name;
}

// The folder a case runs in, with its placeholders.
struct Folder {
  std::unique_ptr<Study> study;
  std::unique_ptr<TempDir> plain;
  fs::path dir;
  std::string config, db;

  explicit Folder(const std::string& fixture) {
    if (fixture == "study") {
      study = std::make_unique<Study>();
      dir = study->dir.path();
      config = study->config;
      db = study->db;
    } else {
      plain = std::make_unique<TempDir>();
      dir = plain->path();
    }
  }

  std::string expand(std::string s) const {
    const std::pair<std::string, std::string> subs[] = {
        {"{dir}", dir.string()},
        {"{config}", config},
        {"{db}", db},
        {"{arch}", std::string(source_dir()) + "/configs/arch/demo-tiny.json"}};
    for (const auto& [from, to] : subs) {
      for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
        s.replace(pos, from.size(), to);
      }
    }
    return s;
  }
  fs::path path(const std::string& p) const {
    const fs::path x = expand(p);
    return x.is_absolute() ? x : dir / x;
  }
};

std::string arg(const json& step, size_t i) {
  if (i >= step.size()) throw Error("setup step " + step.dump() + ": needs " + std::to_string(i + 1) + " items");
  return step[i].is_string() ? step[i].get<std::string>() : step[i].dump();
}

// One setup step; throws Error when it cannot be done.
void setup_step(const Folder& f, const json& step) {
  const std::string verb = arg(step, 0);
  if (verb == "write") {
    write_file_atomic(f.path(arg(step, 1)), f.expand(arg(step, 2)));
  } else if (verb == "sqlite") {
    test::exec_sql(f.path(arg(step, 1)), f.expand(arg(step, 2)));
  } else if (verb == "copy") {
    fs::copy_file(f.path(arg(step, 1)), f.path(arg(step, 2)));
  } else if (verb == "edit" || verb == "append") {
    std::string text = read_file(f.path(arg(step, 1)));
    if (verb == "append") {
      text += f.expand(arg(step, 3));
    } else {
      const std::string from = arg(step, 3);
      const auto pos = text.find(from);
      if (pos == std::string::npos) throw Error("setup edit: \"" + from + "\" is not in " + arg(step, 1));
      text.replace(pos, from.size(), f.expand(arg(step, 4)));
    }
    write_file_atomic(f.path(arg(step, 2)), text);
  } else if (verb == "poke" || verb == "poke-tokens") {
    const fs::path p = f.path(arg(step, 1));
    size_t offset = std::stoull(arg(step, 2));
    if (verb == "poke-tokens") offset += first_token_offset(p);
    poke(p, offset, std::stoull(arg(step, 3)), char(std::stoi(arg(step, 4))));
  } else {
    throw Error("unknown setup verb \"" + verb + "\" (write, sqlite, copy, edit, append, poke, poke-tokens)");
  }
}

std::vector<std::string> strings(const json& spec, const char* key) {
  std::vector<std::string> v;
  if (spec.contains(key)) {
    for (const auto& x : spec.at(key)) v.push_back(x.get<std::string>());
  }
  return v;
}

// Runs one case; returns what it got wrong (empty: the case holds).
std::vector<std::string> check_case(const CliCase& c) {
  if (!c.problem.empty()) return {c.problem};
  if (!c.spec.contains("name") || !c.spec.contains("args")) return {"a case needs name and args"};
  const Folder f(c.fixture);
  try {
    if (c.spec.contains("setup")) {
      for (const auto& step : c.spec.at("setup")) setup_step(f, step);
    }
  } catch (const std::exception& e) {
    return {std::string("setup: ") + e.what()};
  }
  std::vector<std::string> args;
  for (const auto& a : strings(c.spec, "args")) args.push_back(f.expand(a));
  const auto before = file_tree(f.dir);
  const auto r = run_cli(args);
  std::vector<std::string> wrong;
  const int want = c.spec.value("exit", 2);
  if (r.exit_code != want) {
    wrong.push_back("exit " + std::to_string(r.exit_code) + ", wanted " + std::to_string(want) + "; stderr: " + r.err);
  }
  for (const auto& m : strings(c.spec, "err")) {
    if (r.err.find(f.expand(m)) == std::string::npos) wrong.push_back("wanted \"" + m + "\" in stderr: " + r.err);
  }
  for (const auto& m : strings(c.spec, "out")) {
    if (r.out.find(f.expand(m)) == std::string::npos) wrong.push_back("wanted \"" + m + "\" in stdout: " + r.out);
  }
  if (c.spec.value("unchanged", true) && file_tree(f.dir) != before) wrong.push_back("the command changed files");
  return wrong;
}

class CliCases : public ::testing::TestWithParam<CliCase> {};

TEST_P(CliCases, ExitCodeMessageAndFiles) {
  const CliCase& c = GetParam();
  for (const auto& w : check_case(c)) {
    ADD_FAILURE() << c.file << ".toml case " << c.index << " (" << c.spec.value("name", std::string("?")) << "): " << w;
  }
}

INSTANTIATE_TEST_SUITE_P(Files, CliCases, ::testing::ValuesIn(load_cases()),
                         [](const ::testing::TestParamInfo<CliCase>& info) { return case_name(info.param); });

// The driver itself: the case names are unique, every file has cases, and
// a case whose expectations are wrong is caught on each of them (a driver
// that passed everything would pass the files too).
TEST(CliCasesDriver, NamesAreUniqueAndEveryFileHasCases) {
  const auto all = load_cases();
  std::set<std::string> names, files;
  for (const auto& c : all) {
    EXPECT_TRUE(c.problem.empty()) << c.file << ": " << c.problem;
    EXPECT_TRUE(names.insert(case_name(c)).second) << "duplicate case name " << case_name(c);
    files.insert(c.file);
  }
  EXPECT_GE(files.size(), 2u);
  EXPECT_GE(all.size(), 35u);
}

TEST(CliCasesDriver, AWrongExpectationFails) {
  const auto wrong = [](const std::string& toml_case) {
    const json spec = parse_toml(toml_case, "case");
    return check_case(CliCase{"meta", 1, "none", spec, ""});
  };
  // Holds: an unknown command exits 2 and names itself, writing nothing.
  EXPECT_EQ(wrong(R"(name = "ok"
args = ["frobnicate"]
err = ["unknown command \"frobnicate\""])"),
            std::vector<std::string>{});
  auto w = wrong(R"(name = "exit"
args = ["frobnicate"]
exit = 0)");
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NE(w[0].find("exit 2, wanted 0"), std::string::npos) << w[0];
  w = wrong(R"(name = "message"
args = ["frobnicate"]
err = ["no such words"])");
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NE(w[0].find("wanted \"no such words\" in stderr"), std::string::npos) << w[0];
  w = wrong(R"(name = "writes"
setup = [["write", "in.txt", "some text\n"]]
args = ["data", "prepare", "--input", "{dir}/in.txt", "--out", "{dir}/in.tokens"]
exit = 0)");
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0], "the command changed files");
  w = wrong(R"(name = "setup"
setup = [["frobnicate", "x"]]
args = ["--help"])");
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NE(w[0].find("unknown setup verb \"frobnicate\""), std::string::npos) << w[0];
}

}  // namespace
}  // namespace flashnas::test
