// ArchSpec JSON (supernet/arch_spec.h): any text parsed as an architecture;
// an accepted one must survive its canonical round trip unchanged.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "supernet/arch_spec.h"
#include "tests/fuzz/fuzz.h"

FLASHNAS_FUZZ_TARGET(arch_spec) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  flashnas::fuzz::guard("arch_spec", [&] {
    const auto spec = flashnas::ArchSpec::parse(text, "fuzz.json");
    const auto again = flashnas::ArchSpec::parse(spec.canonical_text(), "canonical");
    if (again.hash() != spec.hash()) {
      std::fprintf(stderr, "arch_spec: the canonical text does not parse back to the same architecture:\n%s\n",
                   spec.canonical_text().c_str());
      std::abort();
    }
  });
  return 0;
}
