// Latency-table rows (profiler/lut.h, lut_table.h, predict.h): a fresh table
// filled with the input's rows, loaded and used to predict a small hybrid's
// latency, with and without the table's latency model. The database's own
// checks (SQLite) are not the subject: rows of any values are.
//
// Input: one row per line, tab-separated, in the order of lut_entries'
//   op, hp, d_model, phase, batch, length, median_us, p10_us, p90_us, cv, count, rounds
// (a field that reads fully as an integer or a number is stored as one, else
// as text, as a damaged or hand-edited table could hold it); a line
// "#report<TAB>TEXT" stores TEXT as the table's profile report.
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "common/db.h"
#include "profiler/lut.h"
#include "profiler/lut_table.h"
#include "profiler/predict.h"
#include "profiler/workload.h"
#include "supernet/arch_spec.h"
#include "tests/fuzz/fuzz.h"

namespace {

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::string f;
  std::istringstream in(line);
  while (std::getline(in, f, sep)) out.push_back(f);
  return out;
}

void bind_value(flashnas::Stmt& q, int i, const std::string& v) {
  char* end = nullptr;
  const long long n = std::strtoll(v.c_str(), &end, 10);
  if (!v.empty() && *end == '\0') {
    q.bind(i, static_cast<int64_t>(n));
    return;
  }
  const double x = std::strtod(v.c_str(), &end);
  if (!v.empty() && *end == '\0') {
    q.bind(i, x);
    return;
  }
  q.bind(i, v);
}

const flashnas::ArchSpec& hybrid() {
  static const auto spec = flashnas::ArchSpec::parse(
      R"({"vocab_size": 256, "d_model": 64, "tie_embeddings": true,
          "op_defaults": {"attn": {"n_heads": 2, "n_kv_heads": 1}, "mamba2": {"expand": 2, "head_dim": 32, "d_state": 16},
                          "ffn": {"d_ff": 192}},
          "layers": [{"type": "mamba2"}, {"type": "ffn"}, {"type": "attn"}, {"type": "ffn"}]})",
      "fuzz hybrid");
  return spec;
}

}  // namespace

FLASHNAS_FUZZ_TARGET(lut_rows) {
  namespace fs = std::filesystem;
  const fs::path db = flashnas::fuzz::scratch_dir() / "lut.db";
  fs::remove(db);
  const std::string text(reinterpret_cast<const char*>(data), size);
  flashnas::LutStore store(db, flashnas::Access::create);
  flashnas::Stmt(store.db(), "INSERT INTO devices(id, fingerprint, info, created_at) VALUES(1, 'fuzz', '{}', 'now')").run();
  for (const auto& line : split(text, '\n')) {
    const auto f = split(line, '\t');
    if (f.size() == 2 && f[0] == "#report") {
      flashnas::Stmt q(store.db(),
                       "INSERT OR REPLACE INTO lut_tables(device_id, dtype, runtime, report, commit_id, created_at)"
                       " VALUES(1, 'float32', 'eager', ?, 'fuzz', 'now')");
      q.bind(1, f[1]).run();
      continue;
    }
    if (f.size() != 12) continue;
    flashnas::Stmt q(store.db(),
                     "INSERT OR REPLACE INTO lut_entries(device_id, op, hp, d_model, phase, batch, length, dtype, runtime,"
                     " median_us, p10_us, p90_us, cv, count, samples_us, threads, measured_at, rounds, commit_id)"
                     " VALUES(1, ?, ?, ?, ?, ?, ?, 'float32', 'eager', ?, ?, ?, ?, ?, '[]', 2, 'now', ?, 'fuzz')");
    for (int i = 0; i < 12; ++i) bind_value(q, i + 1, f[static_cast<size_t>(i)]);
    q.run();
  }
  flashnas::fuzz::guard("lut_rows", [&] {
    const auto table = flashnas::LutTable::load(store, 1, "float32", "eager");
    for (const char* w : {"batch=1,prompt=128,generate=32", "batch=4,prompt=64,generate=32"}) {
      const auto wl = flashnas::Workload::parse(w);
      for (const bool use_model : {true, false}) (void)flashnas::predict(hybrid(), wl, table, use_model).to_json();
    }
  });
  return 0;
}
