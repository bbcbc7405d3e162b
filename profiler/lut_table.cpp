#include "profiler/lut_table.h"

#include <algorithm>

namespace flashnas {

LutTable LutTable::open(const std::filesystem::path& db, const std::string& lut_device, const DeviceInfo& here,
                        const std::string& dtype, const std::string& runtime) {
  const LutStore store(db, Access::read_only);
  const int64_t device = lut_device.empty() ? store.require_device(here) : store.find_device(lut_device);
  return load(store, device, dtype, runtime);
}

LutTable LutTable::load(const LutStore& store, int64_t device, const std::string& dtype, const std::string& runtime) {
  LutTable t(dtype, runtime);
  for (const auto& [k, v] : store.entries(device, dtype, runtime)) {
    t.set(k, v.median_us);
    t.commits.insert(v.commit);
  }
  if (auto rep = store.table_report(device, dtype, runtime)) {
    t.report = *rep;
    for (const auto& m : t.report.value("models", json::array())) {
      const int64_t batch = m.at("batch").get<int64_t>();
      t.models_[batch] = LatencyModel::from_json(m.at("model"), "lut_tables report, batch " + std::to_string(batch));
    }
  }
  return t;
}

void LutTable::set(const LutKey& key, double median_us) {
  auto& s = series_[key.series()];
  auto it = std::lower_bound(s.begin(), s.end(), key.length,
                             [](const std::pair<int64_t, double>& p, int64_t len) { return p.first < len; });
  if (it != s.end() && it->first == key.length) {
    it->second = median_us;
  } else {
    s.insert(it, {key.length, median_us});
    ++n_;
  }
}

const std::vector<std::pair<int64_t, double>>* LutTable::series(const LutKey& key) const {
  auto it = series_.find(key.series());
  return it == series_.end() ? nullptr : &it->second;
}

const LatencyModel* LutTable::model(int64_t batch) const {
  auto it = models_.find(batch);
  return it == models_.end() ? nullptr : &it->second;
}

}  // namespace flashnas
