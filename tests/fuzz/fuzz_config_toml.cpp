// Study config TOML (search/config.h): any text parsed as TOML, then read as
// a search config (space, constraints, budgets, train, search, latency).
#include <string_view>

#include "common/toml_io.h"
#include "search/config.h"
#include "tests/fuzz/fuzz.h"

FLASHNAS_FUZZ_TARGET(config_toml) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  flashnas::fuzz::guard("config_toml", [&] {
    const auto doc = flashnas::parse_toml(text, "fuzz.toml");
    (void)flashnas::SearchConfig::from_json(doc, "fuzz.toml");
  });
  return 0;
}
