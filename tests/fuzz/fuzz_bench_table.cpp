// Bench-table CSV (search/bench_table.h): any bytes read as a table, then
// every rung's losses as the replay reads them.
#include "search/bench_table.h"
#include "tests/fuzz/fuzz.h"

FLASHNAS_FUZZ_TARGET(bench_table) {
  const auto path = flashnas::fuzz::write_input("table.csv", data, size);
  flashnas::fuzz::guard("bench_table", [&] {
    const auto t = flashnas::read_bench_table(path);
    for (const int64_t r : t.rungs) (void)t.losses(r, "--rungs");
    for (const auto& c : t.columns) (void)t.column(c);
  });
  return 0;
}
