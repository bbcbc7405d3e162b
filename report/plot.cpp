#include "report/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/svg.h"

namespace flashnas {

std::string plot_svg(const PlotSpec& p) {
  SvgPanel panel;
  panel.x0 = 64;
  panel.y0 = 34;
  panel.w = p.width - 64 - 150;  // the legend sits on the right
  panel.h = p.height - 34 - 48;
  std::vector<double> xs, ys;
  for (const auto& s : p.series) {
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) xs.push_back(s.x[i]), ys.push_back(s.y[i]);
    }
  }
  panel.fit(xs, ys, xs.empty() ? 0.0 : xs.front(), 0.05);
  const auto inside = [&](double x, double y) {
    return std::isfinite(x) && std::isfinite(y) && x >= panel.xmin && x <= panel.xmax && y >= panel.ymin && y <= panel.ymax;
  };
  std::string body;
  int64_t points = 0, curves = 0;
  char buf[512];
  for (const auto& l : p.lines) {
    // Clip the reference line to the panel's ranges by sampling its ends into them.
    const double x1 = std::clamp(l.x1, panel.xmin, panel.xmax), x2 = std::clamp(l.x2, panel.xmin, panel.xmax);
    const auto y_at = [&](double x) { return l.x2 == l.x1 ? l.y1 : l.y1 + (l.y2 - l.y1) * (x - l.x1) / (l.x2 - l.x1); };
    const double y1 = std::clamp(l.x2 == l.x1 ? l.y1 : y_at(x1), panel.ymin, panel.ymax);
    const double y2 = std::clamp(l.x2 == l.x1 ? l.y2 : y_at(x2), panel.ymin, panel.ymax);
    std::snprintf(buf, sizeof buf, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"%s/>", panel.X(x1),
                  panel.Y(y1), panel.X(x2), panel.Y(y2), l.color.c_str(), l.dashed ? " stroke-dasharray=\"5,4\"" : "");
    body += buf;
    if (!l.label.empty()) {
      std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" fill=\"%s\" text-anchor=\"end\">", panel.X(x2) - 3,
                    panel.Y(y2) + 12, l.color.c_str());
      body += std::string(buf) + svg_escape(l.label) + "</text>";
    }
    body += "\n";
  }
  for (const auto& s : p.series) {
    if (s.line) {
      std::string pts;
      double px = NAN, py = NAN;
      for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
        if (!inside(s.x[i], s.y[i])) continue;
        if (s.step && std::isfinite(px)) {
          std::snprintf(buf, sizeof buf, "%.1f,%.1f ", panel.X(s.x[i]), panel.Y(py));
          pts += buf;
        }
        std::snprintf(buf, sizeof buf, "%.1f,%.1f ", panel.X(s.x[i]), panel.Y(s.y[i]));
        pts += buf;
        px = s.x[i];
        py = s.y[i];
      }
      if (!pts.empty()) {
        std::snprintf(buf, sizeof buf, "<polyline class=\"curve\" fill=\"none\" stroke=\"%s\" stroke-opacity=\"%.2f\"%s points=\"",
                      s.color.c_str(), s.opacity, s.dashed ? " stroke-dasharray=\"5,4\"" : "");
        body += std::string(buf) + pts + "\">";
        const std::string& tip = s.line_tip.empty() ? s.name : s.line_tip;
        if (!tip.empty()) body += "<title>" + svg_escape(tip) + "</title>";
        body += "</polyline>\n";
        ++curves;
      }
    }
    if (s.points) {
      for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
        if (!inside(s.x[i], s.y[i])) continue;
        std::snprintf(buf, sizeof buf, "<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\" fill-opacity=\"%.2f\">",
                      panel.X(s.x[i]), panel.Y(s.y[i]), s.radius, s.color.c_str(), s.opacity);
        body += buf;
        if (i < s.tips.size()) body += "<title>" + svg_escape(s.tips[i]) + "</title>";
        body += "</circle>\n";
        ++points;
      }
    }
  }
  // The legend, right of the panel.
  double ly = panel.y0 + 8;
  for (const auto& s : p.series) {
    if (s.name.empty()) continue;
    std::snprintf(buf, sizeof buf,
                  "<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%.1f\" y=\"%.1f\">",
                  panel.x0 + panel.w + 12, ly - 9, s.color.c_str(), panel.x0 + panel.w + 26, ly);
    body += std::string(buf) + svg_escape(s.name.size() > 22 ? s.name.substr(0, 21) + "…" : s.name) + "</text>\n";
    ly += 16;
  }
  std::snprintf(buf, sizeof buf,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" data-plot=\"%s\" data-points=\"%lld\" data-curves=\"%lld\" "
                "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"11\">\n"
                "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                svg_escape(p.id).c_str(), static_cast<long long>(points), static_cast<long long>(curves), p.width, p.height,
                p.width, p.height);
  return std::string(buf) + panel.frame(p.title, p.x_title, p.y_title) + body + "</svg>\n";
}

}  // namespace flashnas
