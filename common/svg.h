// Small helpers for the SVG plots flashnas writes (frontier, compare).
#pragma once
#include <string>

namespace flashnas {

// Text for SVG/XML content and attributes: <, >, & and " escaped.
std::string svg_escape(const std::string& s);
// The opening of a W x H pixel SVG document on a white background (close it with "</svg>\n").
std::string svg_open(double W, double H);
// A round tick step (1, 2, 2.5 or 5 times a power of ten) giving about
// `ticks` ticks over `range` (> 0).
double nice_step(double range, int ticks);

}  // namespace flashnas

#include <vector>

namespace flashnas {

// One plot panel: data ranges mapped onto a w x h box whose top left is
// (x0, y0), in pixels.
struct SvgPanel {
  double x0 = 0, y0 = 0, w = 0, h = 0;
  double xmin = 0, xmax = 1, ymin = 0, ymax = 1;
  // The ranges of `xs` (and `x_also`) and `ys`, each widened by `pad` of its
  // span; x never below 0. Non-finite values are skipped; an empty range is
  // [0, 1] (y) or [x, x + 1] (x).
  void fit(const std::vector<double>& xs, const std::vector<double>& ys, double x_also, double pad);
  double X(double v) const { return x0 + (v - xmin) / (xmax - xmin) * w; }
  double Y(double v) const { return y0 + h - (v - ymin) / (ymax - ymin) * h; }
  // The title above, the frame, a grid with tick labels and the two axis titles.
  std::string frame(const std::string& title, const std::string& x_title, const std::string& y_title) const;
  // A dashed red vertical line at `x` labelled "budget <x> ms".
  std::string budget_line(double x) const;
};

}  // namespace flashnas
