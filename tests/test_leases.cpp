// Leases on both backends (study/study_store.h): claiming, renewing,
// expiring, reclaiming, the token check on results, giving work back, the
// schema migration from version 3, atomic study creation, and (PostgreSQL)
// SKIP LOCKED claims and a store step that survives a server restart. Leases
// are expired by writing their expiry into the past, never by waiting, so no
// case depends on the clock or the scheduler.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <mutex>
#include <thread>

#include "common/db.h"
#include "common/error.h"
#include "pg_server.h"
#include "study/heartbeat.h"
#include "study/study_store.h"
#include "test_util.h"

namespace flashnas {
namespace {


class Leases : public test::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped()) return;
    StudyStore store(target_, Access::create);
    study_ = store.open_study("s", json{{"space", "tiny"}}, 1, 1, json::object()).id;
  }
  // A trial in slot `slot`: running under `token` by `worker`, or pending (no token).
  TrialRow add(StudyStore& store, int64_t slot, const std::string& token, const std::string& worker = "w1") {
    TrialRow t;
    t.origin = "random";
    t.genome = "g" + std::to_string(slot);
    t.arch = "{}";
    t.hash = "h" + std::to_string(slot);
    t.status = token.empty() ? "pending" : "running";
    t.worker = token.empty() ? "" : worker;
    t.lease_token = token;
    t.slot = slot;
    return store.insert(study_, t);
  }
  void expire(StudyStore& store, const std::string& table, int64_t trial_id) {
    Stmt s(store.db(), "UPDATE " + table + " SET lease_expires = 0 WHERE " + (table == "trials" ? "id" : "trial_id") + " = ?");
    s.bind(1, trial_id).run();
  }
  std::optional<TrialRow> claim(StudyStore& store, const std::string& worker, const std::string& token) {
    Transaction tx(store.db(), Transaction::Lock::rows);
    auto t = store.claim_waiting(study_, worker, token);
    tx.commit();
    return t;
  }
  int64_t study_ = 0;
};

TrainResult result(double loss) {
  TrainResult r;
  r.val_loss = loss;
  r.val_bpb = loss;
  r.tokens = 256;
  r.params = 10;
  r.wall_s = 1;
  for (int64_t s = 1; s <= 2; ++s) r.curve.push_back(CurvePoint{s, s * 128, 4.0, loss, 1e-3});
  return r;
}

TEST_P(Leases, AnExpiredLeaseIsReclaimedAndTheOldHolderCannotWriteItsResult) {
  StudyStore store(target_, Access::read_write);
  const TrialRow a = add(store, 0, "t1");
  // A live lease: nothing waits to be claimed; its holder renews it, nobody else can.
  EXPECT_FALSE(claim(store, "w2", "t2"));
  EXPECT_TRUE(store.renew(Lease{a.id, 0, "t1"}));
  EXPECT_FALSE(store.renew(Lease{a.id, 0, "not-the-token"}));
  const auto live = store.in_flight(study_);
  ASSERT_EQ(live.size(), 1u);
  EXPECT_GT(live[0].seconds_left, 30);  // the default lease: 60 s
  EXPECT_LE(live[0].seconds_left, 60);
  // Expired: the next claim takes it over, with an empty curve.
  expire(store, "trials", a.id);
  const auto b = claim(store, "w2", "t2");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->id, a.id);
  EXPECT_EQ(b->status, "running");
  EXPECT_EQ(b->worker, "w2");
  // The old holder: its heartbeat, result, failure and give-back are all refused or do nothing.
  EXPECT_FALSE(store.renew(Lease{a.id, 0, "t1"}));
  const std::string msg = test::error_of([&] { store.finish(Lease{a.id, 0, "t1"}, result(3.0)); });
  EXPECT_NE(msg.find("no longer holds its lease"), std::string::npos) << msg;
  EXPECT_THROW(store.fail(Lease{a.id, 0, "t1"}, "diverged", 1), LeaseLost);
  store.release(Lease{a.id, 0, "t1"});
  EXPECT_EQ(store.trial(study_, a.number)->worker, "w2");
  EXPECT_EQ(store.trial(study_, a.number)->status, "running");
  // The new holder's result stands; written twice (a retried commit), it is the same.
  store.finish(Lease{a.id, 0, "t2"}, result(2.5));
  store.finish(Lease{a.id, 0, "t2"}, result(2.5));
  const auto done = store.trial(study_, a.number);
  EXPECT_EQ(done->status, "done");
  EXPECT_DOUBLE_EQ(done->loss, 2.5);
  EXPECT_EQ(store.curve(a.id).size(), 2u);
  EXPECT_TRUE(store.in_flight(study_).empty());
  EXPECT_FALSE(store.renew(Lease{a.id, 0, "t2"}));  // finished: nothing left to renew
}

TEST_P(Leases, GivenBackWorkIsClaimedNextAndPendingTrialsGoBySlot) {
  StudyStore store(target_, Access::read_write);
  const TrialRow a = add(store, 0, "");
  const TrialRow b = add(store, 1, "tb");
  add(store, 2, "");
  store.release(Lease{b.id, 0, "tb"});
  EXPECT_EQ(store.trial(study_, b.number)->status, "pending");
  EXPECT_EQ(claim(store, "w", "x1")->id, a.id);  // slot 0 first
  EXPECT_EQ(claim(store, "w", "x2")->id, b.id);
  EXPECT_EQ(claim(store, "w", "x3")->slot, 2);
  EXPECT_FALSE(claim(store, "w", "x4"));
  // A promotion given back, or whose lease expired, is removed with its curve.
  store.finish(Lease{a.id, 0, "x1"}, result(3.0));
  store.start_rung(Lease{a.id, 1, "p1"}, 512, "w");
  EXPECT_TRUE(store.renew(Lease{a.id, 1, "p1"}));
  EXPECT_EQ(store.drop_expired_promotions(study_), 0);
  store.release(Lease{a.id, 1, "p1"});
  EXPECT_EQ(store.trial(study_, a.number)->rungs.size(), 1u);
  store.start_rung(Lease{a.id, 1, "p2"}, 512, "w");
  expire(store, "trial_rungs", a.id);
  EXPECT_EQ(store.drop_expired_promotions(study_), 1);
  EXPECT_EQ(store.trial(study_, a.number)->rungs.size(), 1u);
  EXPECT_THROW(store.finish_rung(Lease{a.id, 1, "p2"}, result(2.0)), LeaseLost);
  EXPECT_THROW(store.fail(Lease{a.id, 1, "p2"}, "diverged", 1), LeaseLost);
  EXPECT_EQ(store.trial(study_, a.number)->rung, 0);
  // A promotion that fails under its lease is marked failed at its rung; the trial keeps rung 0's result.
  store.start_rung(Lease{a.id, 1, "p3"}, 512, "w");
  EXPECT_THROW(store.fail(Lease{a.id, 1, "not-p3"}, "diverged", 1), LeaseLost);
  store.fail(Lease{a.id, 1, "p3"}, "diverged", 1.5);
  const TrialRow t = *store.trial(study_, a.number);
  ASSERT_EQ(t.rungs.size(), 2u);
  EXPECT_EQ(t.rungs[1].status, "failed");
  EXPECT_EQ(t.rungs[1].reason, "diverged");
  EXPECT_EQ(t.status, "done");
  EXPECT_EQ(t.rung, 0);
}

TEST_P(Leases, TheLeasesOfWorkersKnownToBeGoneEndAtOnce) {
  StudyStore store(target_, Access::read_write);
  const TrialRow a = add(store, 0, "ta", "host:1:1:1");
  add(store, 1, "tb", "host:2:2:2");
  store.finish(Lease{a.id, 0, "ta"}, result(3.0));
  store.start_rung(Lease{a.id, 1, "pa"}, 512, "host:1:1:1");
  auto gone = [](const std::string& w) { return w == "host:1:1:1"; };
  {
    Transaction tx(store.db(), Transaction::Lock::rows);
    EXPECT_EQ(store.expire_leases_of(study_, gone), 1);  // the promotion; slot 1's worker lives
    EXPECT_EQ(store.drop_expired_promotions(study_), 1);
    tx.commit();
  }
  EXPECT_FALSE(claim(store, "w", "x"));
  const auto left = store.in_flight(study_);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].trial_number, 1);
}

TEST_P(Leases, VersionThreeStudiesGainTheLeaseColumnsAndReadAsTheyAre) {
  {
    StudyStore store(target_, Access::read_write);
    add(store, 0, "t");
    Db& db = store.db();
    for (const char* t : {"trials", "trial_rungs"}) {
      db.exec(std::string("ALTER TABLE ") + t + " DROP COLUMN lease_token");
      db.exec(std::string("ALTER TABLE ") + t + " DROP COLUMN lease_expires");
    }
    db.exec("UPDATE meta SET value = '3' WHERE key = 'study_schema_version'");
  }
  {
    StudyStore reader(target_, Access::read_only);  // reads version 3, writes nothing
    EXPECT_EQ(reader.trials(study_).size(), 1u);
  }
  {
    Db db(target_, Access::read_only);
    Stmt q(db, "SELECT value FROM meta WHERE key = 'study_schema_version'");
    ASSERT_TRUE(q.step());
    EXPECT_EQ(q.text(0), "3");
  }
  StudyStore store(target_, Access::read_write);
  Stmt q(store.db(), "SELECT value FROM meta WHERE key = 'study_schema_version'");
  ASSERT_TRUE(q.step());
  EXPECT_EQ(q.text(0), "4");
  // The trial in flight had no lease: the first claim takes it.
  const auto t = claim(store, "w2", "t2");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->worker, "w2");
}

TEST_P(Leases, WorkersRacingToCreateAStudyGetOne) {
  // Six processes open the same new study at once (released together by a pipe).
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  std::vector<pid_t> kids;
  for (int i = 0; i < 6; ++i) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(go[1]);
      char c;
      (void)!read(go[0], &c, 1);
      try {
        StudyStore store(target_, Access::read_write);
        store.open_study("race", json{{"space", "tiny"}}, 1, 1, json::object());
        _exit(0);
      } catch (...) {
        _exit(1);
      }
    }
    kids.push_back(pid);
  }
  close(go[0]);
  close(go[1]);  // go
  for (pid_t pid : kids) {
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "a worker failed to open the study";
  }
  StudyStore store(target_, Access::read_only);
  Stmt q(store.db(), "SELECT COUNT(*) FROM studies WHERE name = 'race'");
  ASSERT_TRUE(q.step());
  EXPECT_EQ(q.int64(0), 1);
}

// The heartbeat renews the lease it holds and notices when it is lost. It
// beats every third of the lease; the test waits for beats by polling, with a
// generous limit, so its result does not depend on the scheduler.
TEST_P(Leases, TheHeartbeatRenewsItsLeaseAndNoticesWhenItIsLost) {
  StudyStore store(target_, Access::read_write);
  const TrialRow a = add(store, 0, "t1");
  expire(store, "trials", a.id);  // expired now: only a renewal brings it back
  std::vector<std::string> lines;
  std::mutex mu;
  Heartbeat hb(target_, 0.3, [&](const std::string& l) {
    std::lock_guard<std::mutex> lock(mu);
    lines.push_back(l);
  });
  hb.hold(Lease{a.id, 0, "t1"});
  auto wait_for = [](const std::function<bool()>& done) {
    for (int i = 0; i < 600 && !done(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return done();
  };
  ASSERT_TRUE(wait_for([&] { return hb.beats() >= 2; }));
  EXPECT_FALSE(hb.lost());
  EXPECT_FALSE(claim(store, "w2", "t2")) << "a renewed lease is not taken over";
  // Taken over behind its back (as after an expiry): the next beat finds it lost.
  Stmt u(store.db(), "UPDATE trials SET lease_token = 'other' WHERE id = ?");
  u.bind(1, a.id).run();
  ASSERT_TRUE(wait_for([&] { return hb.lost(); }));
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.back().find("the lease is lost"), std::string::npos) << lines.back();
}

INSTANTIATE_TEST_SUITE_P(Backends, Leases, ::testing::Values(Dialect::sqlite, Dialect::postgresql),
                         [](const auto& info) { return info.param == Dialect::sqlite ? "sqlite" : "postgresql"; });

// Two workers claiming at the same moment: the second skips the row the
// first has locked (FOR UPDATE SKIP LOCKED) instead of waiting for it.
TEST(PgLeases, ClaimsAtOnceTakeDifferentTrialsWithoutWaiting) {
  FLASHNAS_REQUIRE_PG(pg);
  const std::string url = pg->new_database();
  int64_t study = 0;
  {
    StudyStore store(url, Access::create);
    study = store.open_study("s", json{{"space", "tiny"}}, 1, 1, json::object()).id;
    for (int64_t slot = 0; slot < 2; ++slot) {
      TrialRow t;
      t.origin = "random";
      t.genome = t.arch = "{}";
      t.hash = "h" + std::to_string(slot);
      t.status = "pending";
      t.slot = slot;
      store.insert(study, t);
    }
  }
  StudyStore one(url, Access::read_write), two(url, Access::read_write);
  Transaction a(one.db(), Transaction::Lock::rows);
  const auto first = one.claim_waiting(study, "w1", "t1");  // holds slot 0's row lock, uncommitted
  Transaction b(two.db(), Transaction::Lock::rows);
  const auto second = two.claim_waiting(study, "w2", "t2");  // would block here without SKIP LOCKED
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->slot, 0);
  EXPECT_EQ(second->slot, 1);
  a.commit();
  b.commit();
}

// A store step interrupted by a server restart is rerun once the server is back.
TEST(PgLeases, AStoreStepIsRetriedAcrossAServerRestart) {
  FLASHNAS_REQUIRE_PG(pg);
  const std::string url = pg->new_database();
  StudyStore store(url, Access::create);
  const int64_t study = store.open_study("s", json{{"space", "tiny"}}, 1, 1, json::object()).id;
  std::string why;
  ASSERT_TRUE(pg->restart(why)) << why;
  // The connection is cut: a plain step fails as "unavailable", not as bad input.
  EXPECT_THROW(store.trials(study), DbUnavailable);
  std::vector<std::string> lines;
  size_t n = 99;
  with_db_retry(store.db(), [&] { n = store.trials(study).size(); }, 60, [&](const std::string& l) { lines.push_back(l); });
  EXPECT_EQ(n, 0u);
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.back().find("the database is back"), std::string::npos) << lines.back();
  // A database that stays away: the step gives up after the window, saying so.
  const std::string msg = test::error_of([&] {
    with_db_retry(store.db(), [&] { throw DbUnavailable("away"); }, 1, nullptr);
  });
  EXPECT_NE(msg.find("away (tried again for"), std::string::npos) << msg;
}

}  // namespace
}  // namespace flashnas
