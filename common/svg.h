// Small helpers for the SVG plots flashnas writes (frontier, compare).
#pragma once
#include <string>

namespace flashnas {

// Text for SVG/XML content and attributes: <, >, & and " escaped.
std::string svg_escape(const std::string& s);
// A round tick step (1, 2, 2.5 or 5 times a power of ten) giving about
// `ticks` ticks over `range` (> 0).
double nice_step(double range, int ticks);

}  // namespace flashnas
