// Copying studies between databases (`flashnas study copy SRC DST`), e.g. a
// study started in a SQLite file moved to PostgreSQL so workers on other
// machines can join it. Every row keeps its id; the work in flight at the
// source has its leases ended, so the first worker on the copy takes it over.
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace flashnas {

struct CopyReport {
  std::vector<std::string> studies;
  std::map<std::string, int64_t> rows;  // table -> rows copied
  bool lut = false;                     // the latency table came along
  int64_t artifact_files = 0;
};

// Copies the studies named (all when empty) from `src` to `dst`, a new or
// empty database (InputError otherwise, and for a name `src` lacks), in one
// transaction: studies, trials, rungs, curves and task metrics, plus the
// whole latency table when the studies priced with the one in `src` (they
// then name `dst` as their table). With both artifact folders given (and
// the source's existing), each study's run folders are copied too. On an
// error nothing is left: the transaction rolls back, a new SQLite file and
// copied folders are removed, and the tables the copy made in an existing
// (empty) database are dropped.
CopyReport copy_studies(const std::string& src, const std::string& dst, const std::vector<std::string>& names,
                        const std::filesystem::path& src_artifacts, const std::filesystem::path& dst_artifacts);

}  // namespace flashnas
