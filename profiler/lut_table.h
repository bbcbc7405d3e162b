// A latency table in memory: one device's entries for one (dtype, runtime),
// grouped into series (an entry's lengths, ascending), and the latency models
// per batch size from the table's profile report. Pricing thousands of
// candidates reads this, not the database.
#pragma once
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "profiler/latency_model.h"
#include "profiler/lut.h"

namespace flashnas {

class LutTable {
 public:
  LutTable(std::string dtype_, std::string runtime_) : dtype(std::move(dtype_)), runtime(std::move(runtime_)) {}
  // Entries of lut_entries and the report of lut_tables (when there is one).
  static LutTable load(const LutStore& store, int64_t device, const std::string& dtype, const std::string& runtime);
  // The table in database `db` (opened read-only) of the device with
  // fingerprint `lut_device`, or when empty of this machine (`here`).
  static LutTable open(const std::filesystem::path& db, const std::string& lut_device, const DeviceInfo& here,
                       const std::string& dtype, const std::string& runtime);

  // Adds or replaces one entry's value (microseconds).
  void set(const LutKey& key, double median_us);
  // The stored (length, us) pairs of a key's series, ascending; nullptr when none.
  const std::vector<std::pair<int64_t, double>>* series(const LutKey& key) const;
  // The latency model for a batch size, when the table has one.
  const LatencyModel* model(int64_t batch) const;
  void set_model(int64_t batch, LatencyModel m) { models_[batch] = std::move(m); }
  const std::map<int64_t, LatencyModel>& models() const { return models_; }

  std::string dtype, runtime;     // of every entry
  json report;                    // the profile report (lut_tables), or null
  std::set<std::string> commits;  // the builds that measured the entries
  size_t size() const { return n_; }

 private:
  std::map<std::string, std::vector<std::pair<int64_t, double>>> series_;
  std::map<int64_t, LatencyModel> models_;
  size_t n_ = 0;
};

}  // namespace flashnas
