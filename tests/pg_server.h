// A throwaway PostgreSQL server for the tests: initdb into a temporary
// folder, listening on a unix socket in that folder only (no TCP port), trust
// authentication, started once per test process and stopped (and removed)
// at its exit. As root, the server runs as the `postgres` user (PostgreSQL
// refuses to run as root). The binaries: FLASHNAS_PG_BIN, else
// /usr/lib/postgresql/<version>/bin (Debian), else PATH.
#pragma once
#include <gtest/gtest.h>

#include <string>

#include "common/db.h"
#include "test_util.h"

namespace flashnas::test {

class PgServer {
 public:
  // The process's server, started on first use; nullptr when it cannot start
  // (why() says why: a test then skips with that message).
  static PgServer* get();
  static const std::string& why();
  // A new, empty database on the server; its URL.
  std::string new_database();
  // The URL of database `name` on the server.
  std::string url(const std::string& name) const;
  // Stops the server (fast: connections are cut) and starts it again, as an
  // administrator's restart; false (with the output in `why`) when it fails.
  bool restart(std::string& why);
  // The unix-socket folder (for URLs with another user).
  const std::string& socket_dir() const { return dir_; }
  // A role that must give its password ("right"): the server asks it of
  // this user only; everyone else is trusted.
  static constexpr const char* kPasswordUser = "flashnas_pw";

  ~PgServer();

 private:
  PgServer() = default;
  std::string bin_, dir_, as_;  // as_: "runuser -u postgres -- " as root, else ""
  int next_ = 0;
};

}  // namespace flashnas::test

// Skips the current test, with the reason, when there is no server.
#define FLASHNAS_REQUIRE_PG(server)                                                   \
  ::flashnas::test::PgServer* server = ::flashnas::test::PgServer::get();             \
  if (!server) GTEST_SKIP() << "no PostgreSQL server: " << ::flashnas::test::PgServer::why()

namespace flashnas::test {

// A test parameterised over the database backends: target_ is a SQLite file
// in dir_, or a new database on the test server (the test skips without one).
// A fixture that extends SetUp calls this one first and returns if IsSkipped().
class BackendTest : public ::testing::TestWithParam<Dialect> {
 protected:
  void SetUp() override {
    if (GetParam() == Dialect::postgresql) {
      FLASHNAS_REQUIRE_PG(pg);
      target_ = pg->new_database();
    } else {
      target_ = (dir_ / "flashnas.db").string();
    }
  }
  TempDir dir_;
  std::string target_;
};

}  // namespace flashnas::test
