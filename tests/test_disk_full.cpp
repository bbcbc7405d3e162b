// A real full disk under train, search and export: a small tmpfs mounted in
// a private mount namespace (unshare -m; root or CAP_SYS_ADMIN, else the
// tests skip), filled with a filler file until only a few KiB are left. The
// command must stop with exit 1 and a message naming what it could not write,
// leave no half-written file behind, and, run again once the filler is
// removed, complete. Nothing here is timed: the disk is full from the start.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <fstream>
#include <iostream>

#include "common/db.h"
#include "common/files.h"
#include "tests/search_fixture.h"

namespace flashnas::test {
namespace {

namespace fs = std::filesystem;

std::string sh_quote(const std::string& s) {
  std::string q = "'";
  for (const char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string command_line(const std::vector<std::string>& args) {
  std::string cmd = sh_quote(flashnas_bin());
  for (const auto& a : args) cmd += " " + sh_quote(a);
  return cmd;
}

// What a command did on the full disk and then on the freed one.
struct FullDiskRun {
  int mounted = -1;               // 0 when the tmpfs could be mounted
  int first_exit = -1, second_exit = -1;
  std::string first_err, second_err;
  std::vector<std::string> files_after_first;  // every path on the disk (filler aside) after the failure
  fs::path after;                 // a copy of the disk after the second run
};

// Mounts a 64 MiB tmpfs at DIR/disk (private to this run), copies DIR/in
// onto it, fills it until `room_kib` KiB are free, runs `first`, lists the
// disk, removes the filler and runs `second`; the disk's final state is
// copied to DIR/after. "{disk}" in the arguments is the tmpfs.
FullDiskRun run_on_full_disk(const TempDir& dir, int room_kib, const std::vector<std::string>& first,
                             const std::vector<std::string>& second) {
  const fs::path disk = dir / "disk";
  fs::create_directories(disk);
  fs::create_directories(dir / "in");
  auto expand = [&](std::vector<std::string> args) {
    for (auto& a : args) {
      for (auto pos = a.find("{disk}"); pos != std::string::npos; pos = a.find("{disk}")) a.replace(pos, 6, disk.string());
    }
    return args;
  };
  const std::string d = sh_quote(disk.string()), out = sh_quote(dir.path().string());
  std::string script = "set -u\n";
  script += "mount -t tmpfs -o size=64m flashnas-full " + d + " || { echo 1 > " + out + "/mounted; exit 0; }\n";
  script += "echo 0 > " + out + "/mounted\n";
  script += "cp -a " + out + "/in/. " + d + "/\n";
  script += "dd if=/dev/zero of=" + d + "/filler bs=64k 2>/dev/null\n";
  script += "truncate -s -" + std::to_string(room_kib) + "K " + d + "/filler\n";
  script += command_line(expand(first)) + " >/dev/null 2>" + out + "/first.err </dev/null; echo $? > " + out + "/first.rc\n";
  script += "(cd " + d + " && find . ! -name filler | sort) > " + out + "/first.files\n";
  script += "rm " + d + "/filler\n";
  script += command_line(expand(second)) + " >/dev/null 2>" + out + "/second.err </dev/null; echo $? > " + out + "/second.rc\n";
  script += "cp -a " + d + "/. " + out + "/after/\n";
  dir.write("run.sh", script);
  fs::create_directories(dir / "after");
  const int status =
      std::system(("unshare -m --propagation private bash " + sh_quote((dir / "run.sh").string()) + " 2>/dev/null").c_str());
  FullDiskRun r;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !fs::exists(dir / "mounted")) return r;
  auto number = [&](const char* name) { return std::stoi("0" + read_file(dir / name)); };
  r.mounted = number("mounted");
  if (r.mounted != 0) return r;
  r.first_exit = number("first.rc");
  r.second_exit = number("second.rc");
  r.first_err = read_file(dir / "first.err");
  r.second_err = read_file(dir / "second.err");
  std::ifstream files(dir / "first.files");
  for (std::string line; std::getline(files, line);) r.files_after_first.push_back(line);
  r.after = dir / "after";
  return r;
}

#define SKIP_WITHOUT_TMPFS(run)                                                                                     \
  if ((run).mounted != 0) {                                                                                          \
    GTEST_SKIP() << "this machine does not let the tests mount a private tmpfs (unshare -m needs root or CAP_SYS_ADMIN)"; \
  }

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// Temporary files a write in progress leaves (write_file_atomic's and the
// checkpoint's), which must never outlive a failed command.
std::vector<std::string> leftovers(const std::vector<std::string>& files) {
  std::vector<std::string> bad;
  for (const auto& f : files) {
    if (contains(f, ".tmp")) bad.push_back(f);
  }
  return bad;
}

const char* kArch = R"({"d_model": 32, "tie_embeddings": true, "layers": [
    {"type": "mamba2", "head_dim": 16, "d_state": 8, "chunk_size": 16}, {"type": "ffn", "d_ff": 64},
    {"type": "attn", "n_heads": 4}]})";

TEST(DiskFull, TrainStopsAtTheCheckpointItCannotWriteAndRunsOnceThereIsRoom) {
  TempDir dir;
  fs::create_directories(dir / "in");
  fs::copy_file(tiny_token_file(dir), dir / "in" / "data.tokens");
  dir.write("in/arch.json", kArch);
  const std::vector<std::string> train = {"train", "--arch", "{disk}/arch.json", "--data", "{disk}/data.tokens",
                                          "--tokens", "4096", "--batch-size", "4", "--seq-len", "32",
                                          "--eval-interval", "8", "--eval-batches", "2", "--threads", "1",
                                          "--out", "{disk}/run", "--quiet"};
  const auto r = run_on_full_disk(dir, 16, train, train);
  SKIP_WITHOUT_TMPFS(r);
  std::cout << "on the full disk: " << r.first_err;  // what the user reads (kept in the test log)
  EXPECT_EQ(r.first_exit, 1) << "an I/O failure, not a crash nor bad input:\n" << r.first_err;
  EXPECT_TRUE(contains(r.first_err, "No space left on device")) << r.first_err;
  EXPECT_TRUE(contains(r.first_err, "/run")) << "names what it could not write:\n" << r.first_err;
  EXPECT_EQ(leftovers(r.files_after_first), std::vector<std::string>{}) << "half-written files left behind";
  for (const auto& f : r.files_after_first) EXPECT_FALSE(contains(f, "checkpoint")) << f;
  EXPECT_EQ(r.second_exit, 0) << r.second_err;
  EXPECT_TRUE(fs::exists(r.after / "run" / "model.safetensors"));
  EXPECT_TRUE(fs::exists(r.after / "run" / "config.json"));
}

TEST(DiskFull, SearchStopsWithoutHarmAndTheSameCommandFinishesTheStudy) {
  Study st;
  TempDir dir;
  fs::create_directories(dir / "in");
  fs::copy_file(st.db, dir / "in" / "study.db");
  const std::vector<std::string> search = {"search", "--config", st.config, "--db", "{disk}/study.db", "--study", "s",
                                           "--threads", "1"};
  // 512 KiB: room for the study's tables and its first steps, not for the
  // first candidate's checkpoint.
  const auto r = run_on_full_disk(dir, 512, search, search);
  SKIP_WITHOUT_TMPFS(r);
  std::cout << "on the full disk: " << r.first_err;  // what the user reads (kept in the test log)
  EXPECT_EQ(r.first_exit, 1) << r.first_err;
  EXPECT_TRUE(contains(r.first_err, "No space left on device") || contains(r.first_err, "disk is full")) << r.first_err;
  EXPECT_TRUE(contains(r.first_err, "/study.db.runs/s/trial-0/")) << "names what it could not write:\n" << r.first_err;
  EXPECT_TRUE(contains(r.first_err, "(the study stopped at trial 0; free space or fix the folder and rerun the same command"))
      << r.first_err;
  EXPECT_EQ(leftovers(r.files_after_first), std::vector<std::string>{}) << "half-written files left behind";
  EXPECT_EQ(r.second_exit, 0) << r.second_err;
  const std::string db = (r.after / "study.db").string();
  EXPECT_EQ(scalar(db, "SELECT COUNT(*) FROM trials WHERE status = 'done' AND reused_from IS NULL"), 8);
  EXPECT_EQ(scalar(db, "SELECT COUNT(*) FROM trials WHERE status IN ('running', 'failed')"), 0)
      << "no candidate may be blamed for the disk";
  EXPECT_EQ(scalar(db, "SELECT COUNT(*) FROM studies WHERE finished_at IS NOT NULL"), 1);
}

// The export folder on the full disk: nothing of it is left; the study's
// database on the full disk (SQLite cannot make its -shm file there): the
// disk is named as the cause, exit 1, not "not a flashnas database".
TEST(DiskFull, ExportLeavesNoHalfFolderAndRunsOnceThereIsRoom) {
  Study st;
  ASSERT_EQ(run_cli(st.search_args()).exit_code, 0);
  {
    TempDir dir;
    const std::vector<std::string> exp = {"export", "--db", st.db, "--study", "s", "--out", "{disk}/model", "--no-measure"};
    const auto r = run_on_full_disk(dir, 16, exp, exp);
    SKIP_WITHOUT_TMPFS(r);
    std::cout << "on the full disk: " << r.first_err;
  std::cout << "on the full disk: " << r.first_err;  // what the user reads (kept in the test log)
    EXPECT_EQ(r.first_exit, 1) << r.first_err;
    EXPECT_TRUE(contains(r.first_err, "cannot write")) << r.first_err;
    EXPECT_TRUE(contains(r.first_err, "/model stopped and nothing of it was kept")) << r.first_err;
    EXPECT_EQ(r.files_after_first, std::vector<std::string>{"."}) << "a half-written export";
    EXPECT_EQ(r.second_exit, 0) << r.second_err;
    EXPECT_TRUE(fs::exists(r.after / "model" / "model.safetensors"));
    EXPECT_TRUE(fs::exists(r.after / "model" / "config.json"));
  }
  TempDir dir;
  fs::create_directories(dir / "in");
  fs::copy_file(st.db, dir / "in" / "study.db");
  fs::copy(st.db + ".runs", dir / "in" / "study.db.runs", fs::copy_options::recursive);
  const std::vector<std::string> exp = {"export", "--db", "{disk}/study.db", "--study", "s", "--out",
                                        (dir / "model").string(), "--no-measure"};
  const auto r = run_on_full_disk(dir, 0, exp, exp);
  SKIP_WITHOUT_TMPFS(r);
  std::cout << "on the full disk: " << r.first_err;
  EXPECT_EQ(r.first_exit, 1) << r.first_err;
  EXPECT_TRUE(contains(r.first_err, "/study.db: cannot be read here (SQLite says: ")) << r.first_err;
  EXPECT_TRUE(contains(r.first_err, "is its disk full or failing? The file was not changed")) << r.first_err;
  EXPECT_EQ(r.second_exit, 0) << r.second_err;
  EXPECT_TRUE(fs::exists(dir / "model" / "model.safetensors"));
}

}  // namespace
}  // namespace flashnas::test
