// A worker's heartbeat: a thread with its own connection to the study
// database that renews the lease the worker holds every `every_s` seconds
// (a third of the lease's length by default). When a renewal finds the lease
// gone (it expired and another worker took the work over), lost() turns
// true and the training stops at its next step. A database that is away
// (a server restarting) is tried again at the next beat; the lease may then
// expire, and the token check at the result decides who wins.
#pragma once
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "study/study_store.h"

namespace flashnas {

// Renews lease `l` for `lease_s` more seconds on the heartbeat's own
// connection `db`; false when the lease is lost. Other leased work than a
// study's trials (a comparison's runs, compare/compare_store.h) passes its own.
using RenewLease = std::function<bool(Db& db, const Lease& l, double lease_s)>;

class Heartbeat {
 public:
  // `db`: the study database; `lease_s`: the lease's length; `log` hears of
  // a lost lease and of renewals that failed (from the heartbeat's thread).
  // `renew`: how a lease is renewed (empty: a study's trial or promotion,
  // StudyStore::renew); `what` names the leased work in messages.
  Heartbeat(const std::string& db, double lease_s, std::function<void(const std::string&)> log, RenewLease renew = {},
            std::string what = "trial id");
  ~Heartbeat();
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;

  // The lease to renew from now on (replaces the previous one); lost() false.
  void hold(const Lease& l);
  // Stop renewing (the work is finished or given back).
  void drop();
  bool lost() const { return lost_.load(); }
  int64_t beats() const { return beats_.load(); }

 private:
  void run();
  std::string db_;
  double lease_s_;
  std::function<void(const std::string&)> log_;
  RenewLease renew_;
  std::string what_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Lease> lease_;
  bool quit_ = false;
  std::atomic<bool> lost_{false};
  std::atomic<int64_t> beats_{0};
  std::thread thread_;
};

}  // namespace flashnas
