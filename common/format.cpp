#include "common/format.h"

#include <cmath>
#include <cstdio>

namespace flashnas {
namespace {
std::string fmt(const char* f, double v, const char* unit) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v, unit);
  return buf;
}
}  // namespace

std::string format_count(double n) {
  const double a = std::fabs(n);
  if (a < 1e4) return fmt("%.0f%s", n, "");
  if (a < 1e6) return fmt("%.1f%s", n / 1e3, "K");
  if (a < 1e9) return fmt("%.2f%s", n / 1e6, "M");
  return fmt("%.2f%s", n / 1e9, "B");
}

std::string format_bytes(double b) {
  if (b < 1024) return fmt("%.0f %s", b, "B");
  if (b < 1024.0 * 1024) return fmt("%.1f %s", b / 1024, "KiB");
  if (b < 1024.0 * 1024 * 1024) return fmt("%.1f %s", b / (1024.0 * 1024), "MiB");
  return fmt("%.2f %s", b / (1024.0 * 1024 * 1024), "GiB");
}

std::string format_flops(double f) {
  if (f < 1e6) return fmt("%.1f %s", f / 1e3, "KFLOP");
  if (f < 1e9) return fmt("%.2f %s", f / 1e6, "MFLOP");
  return fmt("%.2f %s", f / 1e9, "GFLOP");
}

std::string with_commas(int64_t n) {
  std::string s = std::to_string(n < 0 ? -n : n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return n < 0 ? "-" + s : s;
}

std::string format_duration(double s) {
  char buf[32];
  if (!(s >= 0) || !std::isfinite(s)) return "?";
  if (s < 60) std::snprintf(buf, sizeof buf, "%.0fs", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
  else std::snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, (int(s) % 3600) / 60);
  return buf;
}

std::string format_rate(double r) {
  if (!std::isfinite(r)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.1f%%", 100.0 * r);
  return b;
}

std::string format_ms_list(const std::vector<double>& ms) {
  std::string s;
  char buf[32];
  for (size_t i = 0; i < ms.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%s%.1f", i ? "/" : "", ms[i]);
    s += buf;
  }
  return s + " ms";
}

}  // namespace flashnas
