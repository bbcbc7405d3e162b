// Human-readable numbers for tables and progress lines.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace flashnas {

std::string format_count(double n);     // 1234567 -> "1.23M"; below 1e4 -> "1234"
std::string format_bytes(double bytes); // 1536 -> "1.5 KiB"
std::string format_flops(double flops); // 2.1e9 -> "2.10 GFLOP"
std::string with_commas(int64_t n);     // 1234567 -> "1,234,567"
std::string format_duration(double s);  // 42 -> "42s", 125 -> "2m05s", 7300 -> "2h01m"
std::string format_ms_list(const std::vector<double>& ms);  // {12.34, 5} -> "12.3/5.0 ms"

// A rate in [0, 1] as "12.5%"; "-" when it is not a finite number (NaN: nothing to rate).
std::string format_rate(double r);

}  // namespace flashnas
