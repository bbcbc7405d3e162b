#include "study/heartbeat.h"

#include <chrono>

#include "common/error.h"

namespace flashnas {

Heartbeat::Heartbeat(const std::string& db, double lease_s, std::function<void(const std::string&)> log, RenewLease renew,
                     std::string what)
    : db_(db), lease_s_(lease_s), log_(std::move(log)), renew_(std::move(renew)), what_(std::move(what)) {
  thread_ = std::thread([this] { run(); });
}

Heartbeat::~Heartbeat() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    quit_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Heartbeat::hold(const Lease& l) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    lease_ = l;
    lost_ = false;
  }
  cv_.notify_all();
}

void Heartbeat::drop() {
  std::lock_guard<std::mutex> lock(mu_);
  lease_.reset();
}

void Heartbeat::run() {
  std::unique_ptr<StudyStore> store;  // the default renewal's
  std::unique_ptr<Db> conn;           // a caller's renewal's
  const auto every = std::chrono::duration<double>(lease_s_ / 3);
  bool failing = false;
  std::unique_lock<std::mutex> lock(mu_);
  while (!quit_) {
    cv_.wait_for(lock, every, [this] { return quit_; });
    if (quit_ || !lease_) continue;
    const Lease l = *lease_;
    lock.unlock();
    std::optional<bool> held;
    try {
      if (renew_) {
        if (!conn) conn = std::make_unique<Db>(db_, Access::read_write);
        held = renew_(*conn, l, lease_s_);
      } else {
        if (!store) {
          store = std::make_unique<StudyStore>(db_, Access::read_write);
          store->set_lease_seconds(lease_s_);
        }
        held = store->renew(l);
      }
      if (failing && log_) log_("heartbeat: the study database answers again; lease renewed");
      failing = false;
    } catch (const std::exception& e) {
      // Away for now (a restart, a network break): a new connection next beat.
      store.reset();
      conn.reset();
      if (!failing && log_) log_(std::string("heartbeat: cannot renew the lease: ") + e.what());
      failing = true;
    }
    lock.lock();
    if (!held || !lease_ || lease_->token != l.token) continue;  // the work changed meanwhile
    ++beats_;
    if (!*held) {
      lost_ = true;
      lease_.reset();
      if (log_) log_("heartbeat: " + what_ + " " + std::to_string(l.trial_id) + (l.rung > 0 ? ", rung " + std::to_string(l.rung) : "") +
                     ": the lease is lost (it expired and another worker took the work over); stopping this work");
    }
  }
}

}  // namespace flashnas
