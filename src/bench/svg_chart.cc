#include "bench/svg_chart.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>

namespace qf::bench::svg {

namespace {

// SVG has no text measurement without a renderer; layout uses the average advance of a
// sans-serif glyph, which is close enough to avoid overlaps for labels of a few dozen characters.
constexpr double kCharWidth = 0.6;  // times the font size

double text_width(std::string_view s, double size) {
  // Count code points, not bytes, so that UTF-8 names are not over-estimated.
  size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return static_cast<double>(n) * size * kCharWidth;
}

// Keeps at most `max_chars` code points, marking a cut with an ellipsis.
std::string truncate(const std::string& s, size_t max_chars) {
  if (max_chars == 0) return "";
  size_t count = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) continue;
    if (count == max_chars - 1) {
      // Only cut when what remains is longer than the one character the ellipsis replaces.
      size_t rest = 0;
      for (size_t j = i; j < s.size(); ++j)
        rest += (static_cast<unsigned char>(s[j]) & 0xC0) != 0x80;
      if (rest > 1) return s.substr(0, i) + "\u2026";
      return s;
    }
    ++count;
  }
  return s;
}

// Coordinates are written with two decimals: sub-pixel precision beyond that is invisible and
// would only make the output longer. Non-finite values would invalidate the whole SVG.
std::string coord(double v) {
  return format_number(std::isfinite(v) ? v : 0.0, 2);
}

struct LegendItem {
  double x, y;
  size_t index;
};

constexpr double kLegendRow = 18;

// Lays legend entries out left to right, wrapping at max_width; also gives the height used.
std::vector<LegendItem> layout_legend(double x, double y, double max_width,
                                      const std::vector<std::pair<std::string, std::string>>& items,
                                      double* height) {
  std::vector<LegendItem> out;
  double cx = x, cy = y;
  for (size_t i = 0; i < items.size(); ++i) {
    const double w = 26 + text_width(items[i].first, 11) + 16;
    if (cx > x && cx + w > x + max_width) {
      cx = x;
      cy += kLegendRow;
    }
    out.push_back({cx, cy, i});
    cx += w;
  }
  *height = items.empty() ? 0 : cy - y + kLegendRow;
  return out;
}

double legend_height(double max_width,
                     const std::vector<std::pair<std::string, std::string>>& items) {
  double h = 0;
  layout_legend(0, 0, max_width, items, &h);
  return h;
}

// The plot area inside a chart and its two scales.
struct Frame {
  double left, top, right, bottom;
  Scale x, y;
};

std::string tick_label(double v, const Ticks& t, double multiplier, std::string_view suffix) {
  return format_number(v * multiplier, t.decimals) + std::string(suffix);
}

void draw_y_axis(Canvas& c, const Frame& f, const Ticks& t, std::string_view label,
                 std::string_view suffix, double multiplier = 1) {
  for (double v : t.values) {
    const double y = f.y(v);
    c.line(f.left, y, f.right, y, "#e3e3e3");
    c.text(f.left - 6, y + 4, tick_label(v, t, multiplier, suffix), "end", 11, "#444");
  }
  c.line(f.left, f.top, f.left, f.bottom, "#666");
  if (!label.empty()) {
    c.text(16, (f.top + f.bottom) / 2, label, "middle", 12, "#222", -90);
  }
}

void draw_x_axis(Canvas& c, const Frame& f, const Ticks& t, std::string_view label,
                 bool grid = true) {
  for (double v : t.values) {
    const double x = f.x(v);
    if (grid) c.line(x, f.top, x, f.bottom, "#eeeeee");
    c.line(x, f.bottom, x, f.bottom + 5, "#666");
    c.text(x, f.bottom + 18, format_number(v, t.decimals), "middle", 11, "#444");
  }
  c.line(f.left, f.bottom, f.right, f.bottom, "#666");
  if (!label.empty()) c.text((f.left + f.right) / 2, f.bottom + 38, label, "middle", 12);
}

void draw_title(Canvas& c, std::string_view title) {
  if (!title.empty()) c.text(c.width() / 2, 20, title, "middle", 14, "#111", 0, "bold");
}

// Tick values for a y axis: the fixed domain when given, otherwise one covering the data.
Ticks y_ticks(double fixed_min, double fixed_max, double data_min, double data_max) {
  if (fixed_min < fixed_max) return nice_ticks(fixed_min, fixed_max);
  return nice_ticks(data_min, data_max);
}

// Compact value labels: three significant digits is what a reader compares at a glance.
std::string short_value(double v) {
  const double a = std::fabs(v);
  return format_number(v, a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3);
}

}  // namespace

std::string escape_xml(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        // Control characters other than tab and newline are not allowed in XML at all.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') {
          out += ' ';
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string format_number(double v, int max_decimals) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  max_decimals = std::clamp(max_decimals, 0, 12);
  std::string s = fmt::format("{:.{}f}", v, max_decimals);
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  if (s == "-0") s = "0";
  return s;
}

Ticks nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (lo > hi) std::swap(lo, hi);
  if (hi - lo <= 1e-12 * std::max(1.0, std::fabs(hi))) {
    const double pad = lo == 0 ? 1 : std::fabs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  target = std::max(target, 1);
  const double rough = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(rough)));
  const double norm = rough / mag;
  // The tolerance keeps rounding (0.2 / 0.1 is not exactly 2 in every libm) from picking the
  // next larger step.
  constexpr double kTol = 1 + 1e-9;
  const double mult = norm <= kTol ? 1 : norm <= 2 * kTol ? 2 : norm <= 5 * kTol ? 5 : 10;
  Ticks t;
  t.step = mult * mag;
  // The epsilon keeps a bound that is already a multiple of the step (up to rounding) from
  // gaining an extra tick.
  const double first = std::floor(lo / t.step + 1e-9);
  const double last = std::ceil(hi / t.step - 1e-9);
  for (double i = first; i <= last + 0.5; i += 1) {
    const double v = i * t.step;
    t.values.push_back(v == 0 ? 0.0 : v);  // no negative zero
  }
  t.decimals = std::max(0, -static_cast<int>(std::floor(std::log10(t.step) + 1e-9)));
  return t;
}

Ticks log_ticks(double lo, double hi) {
  Ticks t;
  t.step = 0;
  if (!(lo > 0) || !(hi > 0) || !std::isfinite(lo) || !std::isfinite(hi)) lo = 1, hi = 10;
  if (lo > hi) std::swap(lo, hi);
  const int k0 = static_cast<int>(std::floor(std::log10(lo) + 1e-9));
  int k1 = static_cast<int>(std::ceil(std::log10(hi) - 1e-9));
  if (k1 <= k0) k1 = k0 + 1;
  static constexpr std::array<double, 3> kAll = {1, 2, 5};
  // Density follows the data's own span: 0.8..12 is barely over a decade even though it
  // touches four powers of ten.
  const bool dense = std::log10(hi / lo) < 2.5;
  std::vector<double> candidates;
  for (int k = k0; k <= k1; ++k) {
    for (double m : kAll) {
      if (!dense && m != 1) continue;
      if (k == k1 && m != 1) break;
      candidates.push_back(m * std::pow(10.0, k));
    }
  }
  // Trim to the last tick at or below lo and the first at or above hi.
  size_t begin = 0, end = candidates.size();
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (candidates[i] <= lo * (1 + 1e-9)) begin = i;
  }
  for (size_t i = candidates.size(); i-- > 0;) {
    if (candidates[i] >= hi * (1 - 1e-9)) end = i + 1;
  }
  t.values.assign(candidates.begin() + static_cast<std::ptrdiff_t>(begin),
                  candidates.begin() + static_cast<std::ptrdiff_t>(end));
  t.decimals = std::max(0, -static_cast<int>(std::floor(std::log10(t.values.front()) + 1e-9)));
  return t;
}

const std::string& palette_color(size_t index) {
  // Tableau 10: designed for categorical data, readable on white.
  static const std::array<std::string, 10> kColors = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2",
                                                      "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                                                      "#9c755f", "#bab0ac"};
  return kColors[index % kColors.size()];
}

double Scale::operator()(double v) const {
  double t = 0.5;
  if (log) {
    if (v > 0 && d0 > 0 && d1 > 0 && d0 != d1) {
      t = (std::log10(v) - std::log10(d0)) / (std::log10(d1) - std::log10(d0));
    }
  } else if (d1 != d0) {
    t = (v - d0) / (d1 - d0);
  }
  return r0 + t * (r1 - r0);
}

Canvas::Canvas(double width, double height, std::string_view aria_label)
    : width_(width), height_(height), aria_label_(aria_label) {}

void Canvas::line(double x1, double y1, double x2, double y2, std::string_view stroke,
                  double stroke_width, std::string_view dash) {
  body_ += fmt::format(R"(<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="{}")",
                       coord(x1), coord(y1), coord(x2), coord(y2), escape_xml(stroke),
                       coord(stroke_width));
  if (!dash.empty()) body_ += fmt::format(R"( stroke-dasharray="{}")", escape_xml(dash));
  body_ += "/>\n";
}

void Canvas::rect(double x, double y, double w, double h, std::string_view fill,
                  std::string_view tooltip) {
  body_ +=
      fmt::format(R"(<rect x="{}" y="{}" width="{}" height="{}" fill="{}")", coord(x), coord(y),
                  coord(std::max(w, 0.0)), coord(std::max(h, 0.0)), escape_xml(fill));
  if (tooltip.empty()) {
    body_ += "/>\n";
  } else {
    body_ += fmt::format("><title>{}</title></rect>\n", escape_xml(tooltip));
  }
}

void Canvas::circle(double cx, double cy, double r, std::string_view fill,
                    std::string_view tooltip) {
  body_ += fmt::format(R"(<circle cx="{}" cy="{}" r="{}" fill="{}" stroke="#fff")", coord(cx),
                       coord(cy), coord(r), escape_xml(fill));
  if (tooltip.empty()) {
    body_ += "/>\n";
  } else {
    body_ += fmt::format("><title>{}</title></circle>\n", escape_xml(tooltip));
  }
}

void Canvas::text(double x, double y, std::string_view content, std::string_view anchor,
                  double size, std::string_view fill, double rotate, std::string_view weight) {
  body_ += fmt::format(R"(<text x="{}" y="{}" font-size="{}" text-anchor="{}" fill="{}")", coord(x),
                       coord(y), coord(size), escape_xml(anchor), escape_xml(fill));
  if (weight != "normal") body_ += fmt::format(R"( font-weight="{}")", escape_xml(weight));
  if (rotate != 0) {
    body_ +=
        fmt::format(R"svg( transform="rotate({} {} {})")svg", coord(rotate), coord(x), coord(y));
  }
  body_ += fmt::format(">{}</text>\n", escape_xml(content));
}

void Canvas::polyline(const std::vector<std::pair<double, double>>& points, std::string_view stroke,
                      double stroke_width, std::string_view dash, std::string_view css_class,
                      std::string_view tooltip) {
  std::string pts;
  for (const auto& [x, y] : points) {
    if (!pts.empty()) pts += ' ';
    pts += coord(x) + "," + coord(y);
  }
  body_ += fmt::format(R"(<polyline points="{}" fill="none" stroke="{}" stroke-width="{}")", pts,
                       escape_xml(stroke), coord(stroke_width));
  if (!dash.empty()) body_ += fmt::format(R"( stroke-dasharray="{}")", escape_xml(dash));
  if (!css_class.empty()) body_ += fmt::format(R"( class="{}")", escape_xml(css_class));
  if (tooltip.empty()) {
    body_ += "/>\n";
  } else {
    body_ += fmt::format("><title>{}</title></polyline>\n", escape_xml(tooltip));
  }
}

double Canvas::legend(double x, double y, double max_width,
                      const std::vector<std::pair<std::string, std::string>>& label_colors,
                      const std::vector<std::string>& dashes) {
  double height = 0;
  for (const LegendItem& item : layout_legend(x, y, max_width, label_colors, &height)) {
    const auto& [label, color] = label_colors[item.index];
    const std::string dash = item.index < dashes.size() ? dashes[item.index] : "";
    if (dashes.empty()) {
      rect(item.x, item.y + 3, 18, 10, color);
    } else {
      line(item.x, item.y + 8, item.x + 20, item.y + 8, color, 2.5, dash);
    }
    text(item.x + 26, item.y + 12, label, "start", 11);
  }
  return height;
}

std::string Canvas::str() const {
  return fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {0} {1}\" width=\"{0}\" "
      "height=\"{1}\" role=\"img\" aria-label=\"{2}\" font-family=\"sans-serif\">\n{3}</svg>\n",
      coord(width_), coord(height_), escape_xml(aria_label_), body_);
}

std::string render_scatter(const ScatterChart& chart) {
  Canvas c(chart.width, chart.height, chart.title);
  draw_title(c, chart.title);
  Frame f{72, 40, chart.width - 30, chart.height - 55, {}, {}};

  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;
  bool all_positive = !chart.points.empty();
  if (!chart.points.empty()) {
    x_min = x_max = chart.points[0].x;
    y_min = y_max = chart.points[0].y;
    for (const ScatterPoint& p : chart.points) {
      x_min = std::min(x_min, p.x), x_max = std::max(x_max, p.x);
      y_min = std::min(y_min, p.y), y_max = std::max(y_max, p.y);
      all_positive = all_positive && p.x > 0;
    }
  }
  Ticks xt;
  const bool log_x = chart.log_x && all_positive;
  if (log_x) {
    xt = log_ticks(x_min, x_max);
  } else {
    // Leave room around the outermost points so that their markers are not cut by the axes.
    const double pad = (x_max - x_min) * 0.08;
    xt = nice_ticks(x_min >= 0 ? std::max(0.0, x_min - pad) : x_min - pad, x_max + pad);
  }
  const Ticks yt = y_ticks(chart.y_min, chart.y_max, y_min, y_max);
  f.x = Scale{xt.values.front(), xt.values.back(), f.left, f.right, log_x};
  f.y = Scale{yt.values.front(), yt.values.back(), f.bottom, f.top, false};
  draw_y_axis(c, f, yt, chart.y_label, chart.y_suffix);
  draw_x_axis(c, f, xt, chart.x_label + (log_x ? " (log scale)" : ""));
  if (chart.points.empty()) {
    c.text((f.left + f.right) / 2, (f.top + f.bottom) / 2, "no data", "middle", 13, "#888");
    return c.str();
  }

  for (const std::vector<size_t>& frontier : chart.frontiers) {
    std::vector<std::pair<double, double>> pts;
    for (size_t i : frontier) {
      if (i < chart.points.size()) pts.emplace_back(f.x(chart.points[i].x), f.y(chart.points[i].y));
    }
    if (pts.size() >= 2) c.polyline(pts, "#999", 1.2, "5 4", "frontier");
  }

  // Labels of nearby points would overprint each other; each label takes the first of a few
  // vertical offsets where it does not overlap a label placed before it.
  struct Box {
    double x0, y0, x1, y1;
  };
  std::vector<Box> placed;
  for (const ScatterPoint& p : chart.points) {
    const double px = f.x(p.x), py = f.y(p.y);
    c.circle(px, py, 5.5, p.color,
             fmt::format("{}: x {}, y {}{}", p.label, short_value(p.x), short_value(p.y),
                         chart.y_suffix));
  }
  for (const ScatterPoint& p : chart.points) {
    const double px = f.x(p.x), py = f.y(p.y);
    const double w = text_width(p.label, 11);
    const bool left = px + 8 + w > chart.width - 4;
    const double x0 = left ? px - 8 - w : px + 8;
    static constexpr std::array<double, 7> kOffsets = {-7, 15, -20, 28, -33, 41, -46};
    double chosen = kOffsets[0];
    for (double dy : kOffsets) {
      const Box b{x0, py + dy - 10, x0 + w, py + dy + 2};
      const bool clash = std::any_of(placed.begin(), placed.end(), [&](const Box& o) {
        return b.x0 < o.x1 && o.x0 < b.x1 && b.y0 < o.y1 && o.y0 < b.y1;
      });
      if (!clash) {
        chosen = dy;
        break;
      }
    }
    placed.push_back({x0, py + chosen - 10, x0 + w, py + chosen + 2});
    c.text(left ? px - 8 : px + 8, py + chosen, p.label, left ? "end" : "start", 11, "#222");
  }
  return c.str();
}

std::string render_bars(const BarChart& chart) {
  const double legend_h = legend_height(chart.width - 100, chart.legend);
  Canvas c(chart.width, chart.height + legend_h, chart.title);
  draw_title(c, chart.title);
  c.legend(72, 30, chart.width - 100, chart.legend);
  Frame f{72, 40 + legend_h + 10, chart.width - 20, chart.height + legend_h - 45, {}, {}};

  double v_max = 0;
  for (const BarGroup& g : chart.groups) {
    for (const Bar& b : g.bars) v_max = std::max(v_max, b.value);
  }
  const Ticks yt = nice_ticks(0, v_max > 0 ? v_max * 1.05 : 1);
  f.y = Scale{yt.values.front(), yt.values.back(), f.bottom, f.top, false};
  draw_y_axis(c, f, yt, chart.y_label, "");
  c.line(f.left, f.bottom, f.right, f.bottom, "#666");
  if (chart.groups.empty()) {
    c.text((f.left + f.right) / 2, (f.top + f.bottom) / 2, "no data", "middle", 13, "#888");
    return c.str();
  }

  const double group_w = (f.right - f.left) / static_cast<double>(chart.groups.size());
  for (size_t gi = 0; gi < chart.groups.size(); ++gi) {
    const BarGroup& g = chart.groups[gi];
    const double g0 = f.left + group_w * static_cast<double>(gi);
    const double n = static_cast<double>(std::max<size_t>(g.bars.size(), 1));
    const double bar_w = std::min(48.0, group_w * 0.8 / n);
    const double start = g0 + (group_w - bar_w * n) / 2;
    for (size_t bi = 0; bi < g.bars.size(); ++bi) {
      const Bar& b = g.bars[bi];
      const double x = start + bar_w * static_cast<double>(bi);
      const double y = f.y(std::max(b.value, 0.0));
      c.rect(x + 1, y, bar_w - 2, f.bottom - y, b.color,
             fmt::format("{}: {}", b.label, short_value(b.value)));
      // Narrow bars get their value written upwards so that neighbours do not overprint.
      if (bar_w >= 34) {
        c.text(x + bar_w / 2, y - 4, short_value(b.value), "middle", 10, "#333");
      } else {
        c.text(x + bar_w / 2 + 3, y - 4, short_value(b.value), "start", 10, "#333", -90);
      }
    }
    c.text(g0 + group_w / 2, f.bottom + 18, g.label, "middle", 12);
  }
  return c.str();
}

std::string render_hbars(const HBarChart& chart) {
  constexpr double kRow = 22;
  const double top = 40, bottom_margin = 48;
  const double height = top + kRow * static_cast<double>(chart.items.size()) + bottom_margin;
  Canvas c(chart.width, height, chart.title);
  draw_title(c, chart.title);

  double label_w = 0, v_max = 0;
  for (const HBarItem& it : chart.items) {
    label_w = std::max(label_w, text_width(it.label, 11));
    v_max = std::max(v_max, it.value);
  }
  const double max_label_w = chart.width * 0.42;
  label_w = std::min(label_w, max_label_w);
  const size_t max_chars = static_cast<size_t>(max_label_w / (11 * kCharWidth));
  Frame f{label_w + 16, top, chart.width - 60, top + kRow * static_cast<double>(chart.items.size()),
          {},           {}};
  const Ticks xt = nice_ticks(0, v_max > 0 ? v_max : 1);
  f.x = Scale{xt.values.front(), xt.values.back(), f.left, f.right, false};
  draw_x_axis(c, f, xt, chart.x_label);
  c.line(f.left, f.top, f.left, f.bottom, "#666");
  for (size_t i = 0; i < chart.items.size(); ++i) {
    const HBarItem& it = chart.items[i];
    const double y = top + kRow * static_cast<double>(i);
    const std::string tooltip =
        fmt::format("{}: {}", it.tooltip.empty() ? it.label : it.tooltip, short_value(it.value));
    c.rect(f.left, y + 3, f.x(std::max(it.value, 0.0)) - f.left, kRow - 6, chart.color, tooltip);
    c.text(f.left - 6, y + kRow / 2 + 4, truncate(it.label, std::max<size_t>(max_chars, 4)), "end",
           11);
    c.text(f.x(std::max(it.value, 0.0)) + 4, y + kRow / 2 + 4, short_value(it.value), "start", 10,
           "#333");
  }
  return c.str();
}

std::string render_lines(const LineChart& chart) {
  std::vector<std::pair<std::string, std::string>> legend;
  std::vector<std::string> dashes;
  for (const LineSeries& s : chart.series) {
    legend.emplace_back(s.label, s.color);
    // An empty dash array would mean "solid" but must still be distinguishable from "no dashes
    // given", so solid lines use a dash longer than the swatch.
    dashes.push_back(s.dash.empty() ? "100" : s.dash);
  }
  const double legend_h = legend_height(chart.width - 100, legend);
  Canvas c(chart.width, chart.height + legend_h, chart.title);
  draw_title(c, chart.title);
  c.legend(72, 30, chart.width - 100, legend, dashes);
  Frame f{72, 40 + legend_h + 10, chart.width - 30, chart.height + legend_h - 55, {}, {}};

  bool any = false;
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;
  for (const LineSeries& s : chart.series) {
    for (const auto& [x, y] : s.points) {
      if (!any) {
        x_min = x_max = x;
        y_min = y_max = y;
        any = true;
      }
      x_min = std::min(x_min, x), x_max = std::max(x_max, x);
      y_min = std::min(y_min, y), y_max = std::max(y_max, y);
    }
  }
  const bool log_x = chart.log_x && any && x_min > 0;
  const Ticks xt = log_x ? log_ticks(x_min, x_max) : nice_ticks(x_min, x_max);
  const Ticks yt = y_ticks(chart.y_min, chart.y_max, y_min, y_max);
  f.x = Scale{xt.values.front(), xt.values.back(), f.left, f.right, log_x};
  f.y = Scale{yt.values.front(), yt.values.back(), f.bottom, f.top, false};
  Ticks y_labels = yt;
  if (chart.y_scale != 1) {
    // The labels show scaled values, so their decimals follow the scaled step.
    y_labels.decimals =
        std::max(0, -static_cast<int>(std::floor(std::log10(yt.step * chart.y_scale) + 1e-9)));
  }
  draw_y_axis(c, f, y_labels, chart.y_label, chart.y_suffix, chart.y_scale);
  draw_x_axis(c, f, xt, chart.x_label + (log_x ? " (log scale)" : ""));
  if (!any) {
    c.text((f.left + f.right) / 2, (f.top + f.bottom) / 2, "no data", "middle", 13, "#888");
    return c.str();
  }
  for (const LineSeries& s : chart.series) {
    std::vector<std::pair<double, double>> pts;
    pts.reserve(s.points.size());
    for (const auto& [x, y] : s.points) pts.emplace_back(f.x(x), f.y(y));
    c.polyline(pts, s.color, 2, s.dash, chart.series_class, s.label);
  }
  return c.str();
}

}  // namespace qf::bench::svg
