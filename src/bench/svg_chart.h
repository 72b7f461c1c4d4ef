// Small SVG chart builders for the bench reports. The HTML report must be one self-contained
// file that renders without network access, so charts are drawn here as plain SVG elements
// instead of by a JavaScript charting library. Every number is formatted by `format_number`, so
// the same report always produces byte-identical SVG (reports can be diffed and golden-tested).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qf::bench::svg {

// Escapes &, <, >, " and ' so that any text (model paths, node names) is safe both as element
// content and inside attribute values of HTML and SVG.
std::string escape_xml(std::string_view text);

// Fixed-point with at most `max_decimals` decimals, trailing zeros and a trailing point removed,
// and no negative zero: 2.50 -> "2.5", 3.0 -> "3", -0.0001 -> "0". Independent of the locale.
std::string format_number(double v, int max_decimals = 2);

// Evenly spaced "nice" tick values (step 1, 2 or 5 times a power of ten) covering [lo, hi] with
// about `target` intervals; the first tick is <= lo and the last >= hi. An empty or degenerate
// range is widened so that there are always at least two ticks.
struct Ticks {
  double step = 1;
  std::vector<double> values;
  int decimals = 0;  // enough decimals to tell the ticks apart (for format_number)
};
Ticks nice_ticks(double lo, double hi, int target = 5);

// Ticks for a base-10 logarithmic axis over [lo, hi] (both > 0): the powers of ten, plus their 2x
// and 5x multiples when the data spans less than two and a half decades.
Ticks log_ticks(double lo, double hi);

// A fixed palette of colours that are distinguishable on white and in greyscale print.
const std::string& palette_color(size_t index);

// Accumulates SVG elements; `str()` wraps them in an <svg> root with a viewBox so that the chart
// scales with the page.
class Canvas {
 public:
  Canvas(double width, double height, std::string_view aria_label);

  double width() const { return width_; }
  double height() const { return height_; }

  void line(double x1, double y1, double x2, double y2, std::string_view stroke,
            double stroke_width = 1, std::string_view dash = "");
  // `tooltip` becomes a <title> child (shown on hover), empty for none.
  void rect(double x, double y, double w, double h, std::string_view fill,
            std::string_view tooltip = "");
  void circle(double cx, double cy, double r, std::string_view fill, std::string_view tooltip = "");
  // anchor: "start", "middle" or "end". `rotate` turns the text around (x, y) in degrees.
  void text(double x, double y, std::string_view content, std::string_view anchor = "start",
            double size = 12, std::string_view fill = "#222", double rotate = 0,
            std::string_view weight = "normal");
  // `css_class` lets tests and style sheets find a series.
  void polyline(const std::vector<std::pair<double, double>>& points, std::string_view stroke,
                double stroke_width = 1.5, std::string_view dash = "",
                std::string_view css_class = "", std::string_view tooltip = "");
  // A small legend: coloured swatches with labels, laid out left to right from (x, y) and wrapped
  // at `max_width`. Returns the height it used.
  double legend(double x, double y, double max_width,
                const std::vector<std::pair<std::string, std::string>>& label_colors,
                const std::vector<std::string>& dashes = {});

  std::string str() const;

 private:
  double width_;
  double height_;
  std::string aria_label_;
  std::string body_;
};

// Maps a data interval onto a pixel interval, linearly or logarithmically.
struct Scale {
  double d0 = 0, d1 = 1;  // data domain
  double r0 = 0, r1 = 1;  // pixel range
  bool log = false;
  double operator()(double v) const;
};

// One data point of a scatter chart.
struct ScatterPoint {
  double x = 0;
  double y = 0;
  std::string label;  // drawn next to the point
  std::string color;
};

struct ScatterChart {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::string y_suffix;  // appended to y tick labels ("%")
  std::vector<ScatterPoint> points;
  bool log_x = false;  // falls back to linear when some x <= 0
  // Optional fixed y domain (ignored when y_min >= y_max): the accuracy axis tops out at 100%.
  double y_min = 0, y_max = 0;
  // Point indices joined by a dashed line, each group sorted by x (the Pareto frontiers).
  std::vector<std::vector<size_t>> frontiers;
  double width = 900, height = 420;
};
std::string render_scatter(const ScatterChart& chart);

// Vertical bars in labelled groups along the x axis.
struct Bar {
  std::string label;  // tooltip and legend key
  double value = 0;
  std::string color;
};
struct BarGroup {
  std::string label;  // under the group
  std::vector<Bar> bars;
};
struct BarChart {
  std::string title;
  std::string y_label;
  std::vector<BarGroup> groups;
  std::vector<std::pair<std::string, std::string>> legend;  // (label, colour)
  double width = 900, height = 380;
};
std::string render_bars(const BarChart& chart);

// Horizontal bars, one per item, largest first as given.
struct HBarItem {
  std::string label;
  std::string tooltip;
  double value = 0;
};
struct HBarChart {
  std::string title;
  std::string x_label;
  std::string color = "#4e79a7";
  std::vector<HBarItem> items;
  double width = 900;
};
std::string render_hbars(const HBarChart& chart);

// Lines through (x, y) points, one polyline per series.
struct LineSeries {
  std::string label;
  std::string color;
  std::string dash;  // stroke-dasharray, empty for solid
  std::vector<std::pair<double, double>> points;
};
struct LineChart {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::string y_suffix;
  double y_scale = 1;  // tick labels show y * y_scale (fractions as percentages)
  std::vector<LineSeries> series;
  std::string series_class;  // css class of every polyline
  double y_min = 0, y_max = 0;
  bool log_x = false;  // falls back to linear when some x <= 0
  double width = 900, height = 420;
};
std::string render_lines(const LineChart& chart);

}  // namespace qf::bench::svg
