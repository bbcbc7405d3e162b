#include "common/svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace flashnas {

std::string svg_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

std::string svg_open(double W, double H) {
  char buf[300];
  std::snprintf(buf, sizeof buf,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                W, H, W, H);
  return buf;
}

double nice_step(double range, int ticks) {
  const double raw = range / ticks;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (m * mag >= raw) return m * mag;
  }
  return 10 * mag;
}

void SvgPanel::fit(const std::vector<double>& xs, const std::vector<double>& ys, double x_also, double pad) {
  double xlo = x_also, xhi = x_also, ylo = INFINITY, yhi = -INFINITY;
  for (double x : xs) {
    if (!std::isfinite(x)) continue;
    xlo = std::isfinite(xlo) ? std::min(xlo, x) : x;
    xhi = std::isfinite(xhi) ? std::max(xhi, x) : x;
  }
  for (double y : ys) {
    if (!std::isfinite(y)) continue;
    ylo = std::min(ylo, y);
    yhi = std::max(yhi, y);
  }
  if (!std::isfinite(ylo)) {
    ylo = 0;
    yhi = 1;
  }
  if (!std::isfinite(xlo)) xlo = 0;
  if (!std::isfinite(xhi)) xhi = xlo + 1;
  const double xpad = pad * std::max(xhi - xlo, 1e-3), ypad = pad * std::max(yhi - ylo, 1e-3);
  xmin = std::max(0.0, xlo - xpad);
  xmax = xhi + xpad;
  ymin = ylo - ypad;
  ymax = yhi + ypad;
}

std::string SvgPanel::frame(const std::string& title, const std::string& x_title, const std::string& y_title) const {
  std::string s;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\">%s</text>\n"
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n",
                x0 + w / 2, y0 - 16, svg_escape(title).c_str(), x0, y0, w, h);
  s += buf;
  const double xs = nice_step(xmax - xmin, 6), ys = nice_step(ymax - ymin, 6);
  for (double v = std::ceil(xmin / xs) * xs; v <= xmax; v += xs) {
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n",
                  X(v), y0, X(v), y0 + h, X(v), y0 + h + 14, v);
    s += buf;
  }
  for (double v = std::ceil(ymin / ys) * ys; v <= ymax; v += ys) {
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                  x0, Y(v), x0 + w, Y(v), x0 - 4, Y(v) + 4, v);
    s += buf;
  }
  std::snprintf(buf, sizeof buf,
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n"
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 %.1f %.1f)\">%s</text>\n",
                x0 + w / 2, y0 + h + 34, svg_escape(x_title).c_str(), x0 - 46, y0 + h / 2, x0 - 46, y0 + h / 2,
                svg_escape(y_title).c_str());
  s += buf;
  return s;
}

std::string SvgPanel::budget_line(double x) const {
  char buf[400];
  std::snprintf(buf, sizeof buf,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#c33\" stroke-dasharray=\"5,4\"/>"
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#c33\">budget %.4g ms</text>\n",
                X(x), y0, X(x), y0 + h, X(x) - 4, y0 + 12, x);
  return buf;
}

}  // namespace flashnas
