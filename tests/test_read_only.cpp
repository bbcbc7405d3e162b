// Reading needs no write access: frontier, latency, export and search's
// --lut read a database on a read-only mount (where SQLite cannot even make
// its -shm file), give the same answers as on a writable disk, and leave a
// writable folder exactly as it was; a command that writes says which file it
// cannot write. The read-only mount is a bind mount in a private mount
// namespace (unshare -m), gone when the command exits.
#include <gtest/gtest.h>

#include "common/files.h"
#include "common/db.h"
#include "tests/search_fixture.h"

namespace flashnas::test {
namespace {

namespace fs = std::filesystem;

// Runs flashnas with `folder` mounted read-only for it alone; with `probe`,
// only once a file could not be made there.
std::vector<std::string> read_only_mount(const fs::path& folder, bool probe = false) {
  return {"unshare", "-m", "--propagation", "private", "sh", "-c",
          std::string("mount --bind \"$1\" \"$1\" && mount -o remount,bind,ro \"$1\" && ") +
              (probe ? "! touch \"$1/probe\" 2>/dev/null && " : "") + "shift && exec \"$@\"",
          "sh", folder.string()};
}

// Whether this machine lets the tests make private read-only mounts (root or
// CAP_SYS_ADMIN, and unshare).
bool can_mount_read_only(const TempDir& dir) {
  return run_cli({"--version"}, read_only_mount(dir.path(), true)).exit_code == 0 && !fs::exists(dir / "probe");
}

#define SKIP_WITHOUT_MOUNTS(dir)                                                                          \
  if (!can_mount_read_only(dir)) {                                                                        \
    GTEST_SKIP() << "this machine does not let the tests make private read-only mounts (unshare -m needs " \
                    "root or CAP_SYS_ADMIN)";                                                             \
  }

TEST(ReadOnly, ReadingCommandsReadADatabaseOnAReadOnlyMount) {
  Study st;
  SKIP_WITHOUT_MOUNTS(st.dir);
  auto r = run_cli(st.search_args());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  TempDir out;
  {
    Db db(st.db, Access::read_only);
    Stmt q(db, "SELECT arch FROM trials WHERE status = 'done' ORDER BY number LIMIT 1");
    ASSERT_TRUE(q.step());
    out.write("arch.json", q.text(0));
  }
  const auto before = file_tree(st.dir.path());
  ASSERT_EQ(before.count("study.db-wal") + before.count("study.db-shm"), 0u);
  const auto ro = read_only_mount(st.dir.path());

  // The same answers as on a writable disk. The synthetic table is not this
  // machine's, so latency's answer is that refusal, read from the tables.
  const std::vector<std::pair<std::vector<std::string>, int>> reads = {
      {{"frontier", "--db", st.db, "--study", "s"}, 0},
      {{"latency", "--db", st.db, "--arch", (out / "arch.json").string(), "--workload", "batch=1,prompt=16,generate=8"}, 2},
  };
  for (const auto& [args, code] : reads) {
    SCOPED_TRACE(args[0]);
    const auto on_ro = run_cli(args, ro);
    EXPECT_EQ(on_ro.exit_code, code) << on_ro.err;
    const auto on_rw = run_cli(args);
    EXPECT_EQ(on_rw.exit_code, code) << on_rw.err;
    EXPECT_FALSE(on_ro.out.empty() && on_ro.err.empty());
    EXPECT_EQ(on_ro.out, on_rw.out);
    EXPECT_EQ(on_ro.err, on_rw.err);
  }
  EXPECT_NE(run_cli(reads[1].first, ro).err.find("it holds tables for: cpu|synthetic"), std::string::npos);
  // export reads the study from the mount and writes its model elsewhere.
  r = run_cli({"export", "--db", st.db, "--study", "s", "--out", (out / "model").string(), "--no-measure"}, ro);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(out / "model" / "config.json"));
  // A search whose study lives elsewhere prices with the read-only table.
  auto args = st.search_args("s2");
  args[4] = (out / "studies.db").string();
  args.insert(args.end(), {"--lut", st.db});
  r = run_cli(args, ro);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(scalar((out / "studies.db").string(), "SELECT COUNT(*) FROM trials WHERE status = 'done'"), 8);
  // A command that writes its database is refused with the reason.
  r = run_cli(st.search_args("s3"), ro);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(st.db + ": this command writes to its database, and the file cannot be written (Read-only file system)"),
            std::string::npos)
      << r.err;
  // Nothing changed: not on the mount, and not in the writable runs (no -wal
  // or -shm file left beside the database, no table added).
  EXPECT_EQ(file_tree(st.dir.path()), before);
}

// A -wal file with changes not yet in the database cannot be applied in a
// read-only folder, and reading the database without it would be stale: the
// reading command names the file and says what to do.
TEST(ReadOnly, UnappliedWalChangesInAReadOnlyFolderAreNamed) {
  Study st;
  SKIP_WITHOUT_MOUNTS(st.dir);
  TempDir copy;
  {
    Db db(st.db, false);
    db.exec("PRAGMA wal_autocheckpoint=0");
    db.exec("INSERT INTO meta(key, value) VALUES('note', 'not checkpointed')");
    fs::copy_file(st.db, copy / "study.db");
    fs::copy_file(st.db + "-wal", copy / "study.db-wal");
  }
  ASSERT_GT(fs::file_size(copy / "study.db-wal"), 0u);
  const std::string db = (copy / "study.db").string();
  const auto before = file_tree(copy.path());
  const auto r = run_cli({"frontier", "--db", db, "--study", "s"}, read_only_mount(copy.path()));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(db + "-wal: holds changes not yet written into the database, and the folder is read-only"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(file_tree(copy.path()), before);
}

}  // namespace
}  // namespace flashnas::test
