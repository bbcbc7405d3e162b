// Interactive-enough SVG plots for the HTML study report (report/study_report.h):
// scatter points that carry their description (an SVG <title>, shown on hover
// by the browser and by the page's info box), polylines, reference lines.
// Every point has class "pt" and every polyline class "curve", and each plot
// names itself (data-plot) and the points and curves it drew (data-points,
// data-curves), so a test can check what a browser rendered.
#pragma once
#include <string>
#include <vector>

namespace flashnas {

struct PlotSeries {
  std::string name;             // legend text ("" : no legend entry)
  std::string color = "#1f5fbf";
  std::vector<double> x, y;     // data units; non-finite pairs are skipped
  std::vector<std::string> tips;  // per point (points only; empty: none)
  std::string line_tip;         // the line's hover text ("": its name)
  bool points = true;           // draw each pair as a circle
  bool line = false;            // join the pairs in order
  bool step = false;            // with line: a step line (horizontal, then vertical)
  bool dashed = false;
  double radius = 3.5;
  double opacity = 0.85;
};

// A straight reference line between two data points (e.g. y = x, a budget).
struct PlotLine {
  double x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  std::string color = "#c0392b", label;
  bool dashed = true;
};

struct PlotSpec {
  std::string id;     // unique in the page: letters, digits, '-'
  std::string title, x_title, y_title;
  double width = 640, height = 380;
  std::vector<PlotSeries> series;
  std::vector<PlotLine> lines;
};

// The plot as an inline <svg> element (no XML prolog).
std::string plot_svg(const PlotSpec& p);

}  // namespace flashnas
