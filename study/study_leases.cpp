// The study store's leases (study/study_store.h): ending the leases of
// workers known to be gone, dropping expired promotions, heartbeats, giving
// work back, and the study's status (claims are in study_store.cpp, beside
// the trial rows they read).
#include <random>

#include "common/error.h"
#include "study/study_store.h"

namespace flashnas {

std::string new_lease_token() {
  static const char* hex = "0123456789abcdef";
  std::random_device rd;
  std::string out;
  for (int i = 0; i < 4; ++i) {
    uint32_t x = rd();
    for (int j = 0; j < 8; ++j, x >>= 4) out += hex[x & 15];
  }
  return out;
}

int StudyStore::expire_leases_of(int64_t study, const std::function<bool(const std::string&)>& gone) {
  struct Held {
    int64_t trial_id;
    int rung;
    std::string worker, token;
  };
  std::vector<Held> held;
  {
    Stmt q(db_, "SELECT id, 0, worker, lease_token FROM trials WHERE study_id = ?1 AND status = 'running' AND"
                " lease_token IS NOT NULL UNION ALL SELECT r.trial_id, r.rung, r.worker, r.lease_token FROM trial_rungs r"
                " JOIN trials t ON t.id = r.trial_id WHERE t.study_id = ?1 AND r.rung > 0 AND r.status = 'running' AND"
                " r.lease_token IS NOT NULL");
    q.bind(1, study);
    while (q.step()) {
      held.push_back({q.int64(0), int(q.int64(1)), q.is_null(2) ? "" : q.text(2), q.text(3)});
    }
  }
  int ended = 0;
  for (const auto& h : held) {
    if (!gone(h.worker)) continue;
    // Only while the same lease is held: it may have changed hands meanwhile.
    Stmt u(db_, h.rung == 0 ? "UPDATE trials SET lease_expires = 0 WHERE id = ? AND ? = 0 AND lease_token = ? AND status = 'running'"
                            : "UPDATE trial_rungs SET lease_expires = 0 WHERE trial_id = ? AND rung = ? AND lease_token = ?"
                              " AND status = 'running'");
    u.bind(1, h.trial_id).bind(2, int64_t(h.rung)).bind(3, h.token).run();
    ++ended;
  }
  return ended;
}

int StudyStore::drop_expired_promotions(int64_t study) {
  const std::string now = db_.epoch_sql();
  Stmt s(db_, "DELETE FROM trial_rungs WHERE rung > 0 AND status = 'running' AND (lease_expires IS NULL OR lease_expires < " +
                  now + ") AND trial_id IN (SELECT id FROM trials WHERE study_id = ?) RETURNING trial_id, rung");
  s.bind(1, study);
  std::vector<std::pair<int64_t, int64_t>> dropped;
  while (s.step()) dropped.emplace_back(s.int64(0), s.int64(1));
  s.reset();
  for (const auto& [trial_id, rung] : dropped) {
    Stmt d(db_, "DELETE FROM trial_curves WHERE trial_id = ? AND rung = ?");
    d.bind(1, trial_id).bind(2, rung).run();
  }
  return int(dropped.size());
}

bool StudyStore::renew(const Lease& l) {
  const std::string now = db_.epoch_sql();
  Stmt s(db_, l.rung == 0 ? "UPDATE trials SET lease_expires = " + now + " + ? WHERE id = ? AND ? = 0 AND lease_token = ?"
                                " AND status = 'running' RETURNING id"
                          : "UPDATE trial_rungs SET lease_expires = " + now + " + ? WHERE trial_id = ? AND rung = ? AND"
                                " lease_token = ? AND status = 'running' RETURNING trial_id");
  s.bind(1, lease_s_).bind(2, l.trial_id).bind(3, int64_t(l.rung)).bind(4, l.token);
  const bool held = s.step();
  s.reset();
  return held;
}

void StudyStore::release(const Lease& l) {
  if (l.rung == 0) {
    Stmt s(db_, "UPDATE trials SET status = 'pending', worker = NULL, started_at = NULL, lease_token = NULL,"
                " lease_expires = NULL WHERE id = ? AND lease_token = ? AND status = 'running'");
    s.bind(1, l.trial_id).bind(2, l.token).run();
    return;
  }
  Stmt s(db_, "DELETE FROM trial_rungs WHERE trial_id = ? AND rung = ? AND lease_token = ? AND status = 'running'"
              " RETURNING rung");
  s.bind(1, l.trial_id).bind(2, int64_t(l.rung)).bind(3, l.token);
  const bool held = s.step();
  s.reset();
  if (!held) return;
  Stmt d(db_, "DELETE FROM trial_curves WHERE trial_id = ? AND rung = ?");
  d.bind(1, l.trial_id).bind(2, int64_t(l.rung)).run();
}

std::vector<StudyStore::InFlight> StudyStore::in_flight(int64_t study) const {
  const std::string now = db_.epoch_sql();
  Stmt q(db_, "SELECT number, 0, worker, COALESCE(lease_expires, 0) - " + now + " FROM trials WHERE study_id = ?1 AND"
              " status = 'running' UNION ALL SELECT t.number, r.rung, r.worker, COALESCE(r.lease_expires, 0) - " + now +
              " FROM trial_rungs r JOIN trials t ON t.id = r.trial_id WHERE t.study_id = ?1 AND r.rung > 0 AND"
              " r.status = 'running' ORDER BY 1, 2");
  q.bind(1, study);
  std::vector<InFlight> out;
  while (q.step()) out.push_back({q.int64(0), int(q.int64(1)), q.is_null(2) ? "" : q.text(2), q.real(3)});
  return out;
}

StudyStatus study_status(const std::string& db, const std::string& study) {
  StudyStore store(db, Access::read_only);
  const StudyRow row = store.get_study(study);
  StudyStatus s;
  s.finished = row.finished;
  s.in_flight = store.in_flight(row.id);
  std::map<std::string, int> trained;
  for (const auto& t : store.trials(row.id)) {
    ++s.by_status[t.status];
    if (t.reused_from || t.status == "pruned") continue;
    if (++trained[t.hash] == 2) ++s.trained_twice;
    for (const auto& r : t.rungs) {
      if (r.status == "done" && store.curve(t.id, r.rung).empty()) ++s.trained_without_curve;
    }
  }
  return s;
}

json StudyStatus::to_json() const {
  json flight = json::array();
  for (const auto& f : in_flight) {
    flight.push_back({{"trial", f.trial_number}, {"rung", f.rung}, {"worker", f.worker}, {"lease_seconds_left", f.seconds_left}});
  }
  return {{"finished", finished}, {"trials", by_status}, {"in_flight", flight},
          {"trained_without_curve", trained_without_curve}, {"trained_twice", trained_twice}};
}

}  // namespace flashnas
