#include "bench/svg_chart.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace qf::bench::svg {
namespace {

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

// The point count of the first <polyline> with the given class.
size_t polyline_points(const std::string& svg, const std::string& css_class) {
  const size_t at = svg.find("class=\"" + css_class + "\"");
  if (at == std::string::npos) return 0;
  const size_t start = svg.rfind("points=\"", at) + 8;
  const std::string pts = svg.substr(start, svg.find('"', start) - start);
  return pts.empty() ? 0 : count(pts, " ") + 1;
}

std::vector<std::string> formatted(const Ticks& t) {
  std::vector<std::string> out;
  for (double v : t.values) out.push_back(format_number(v, t.decimals));
  return out;
}

TEST(SvgChartTest, EscapesMarkupCharacters) {
  EXPECT_EQ(escape_xml("<model&name>"), "&lt;model&amp;name&gt;");
  EXPECT_EQ(escape_xml("a\"b'c"), "a&quot;b&#39;c");
  EXPECT_EQ(escape_xml("tab\tok\x01"), "tab\tok ");
  EXPECT_EQ(escape_xml("caf\xc3\xa9"), "caf\xc3\xa9");  // UTF-8 passes through
}

TEST(SvgChartTest, FormatsNumbersDeterministically) {
  EXPECT_EQ(format_number(2.5), "2.5");
  EXPECT_EQ(format_number(3.0), "3");
  EXPECT_EQ(format_number(0.125, 3), "0.125");
  EXPECT_EQ(format_number(0.126, 2), "0.13");
  EXPECT_EQ(format_number(-0.0001), "0");  // never "-0"
  EXPECT_EQ(format_number(-1.5), "-1.5");
  EXPECT_EQ(format_number(1234567.0, 0), "1234567");  // no exponent, no grouping
  EXPECT_EQ(format_number(std::nan("")), "nan");
}

TEST(SvgChartTest, NiceTicksForKnownRanges) {
  Ticks t = nice_ticks(0, 9.3);
  EXPECT_DOUBLE_EQ(t.step, 2);
  EXPECT_EQ(formatted(t), (std::vector<std::string>{"0", "2", "4", "6", "8", "10"}));

  t = nice_ticks(0.013, 0.087);
  EXPECT_DOUBLE_EQ(t.step, 0.02);
  EXPECT_EQ(formatted(t), (std::vector<std::string>{"0", "0.02", "0.04", "0.06", "0.08", "0.1"}));

  t = nice_ticks(97.2, 100);
  EXPECT_EQ(formatted(t), (std::vector<std::string>{"97", "98", "99", "100"}));

  t = nice_ticks(0, 1);
  EXPECT_EQ(formatted(t), (std::vector<std::string>{"0", "0.2", "0.4", "0.6", "0.8", "1"}));

  t = nice_ticks(-3, 3);
  EXPECT_EQ(formatted(t), (std::vector<std::string>{"-4", "-2", "0", "2", "4"}));

  // A bound on a tick gets no extra tick beyond it.
  t = nice_ticks(0, 250);
  EXPECT_EQ(formatted(t), (std::vector<std::string>{"0", "50", "100", "150", "200", "250"}));
}

TEST(SvgChartTest, NiceTicksWidenDegenerateRanges) {
  const Ticks t = nice_ticks(5, 5);
  ASSERT_GE(t.values.size(), 2u);
  EXPECT_LT(t.values.front(), 5);
  EXPECT_GT(t.values.back(), 5);
  EXPECT_GE(nice_ticks(0, 0).values.size(), 2u);
}

TEST(SvgChartTest, LogTicks) {
  // Under three decades: 1-2-5 steps, trimmed to just cover the data.
  EXPECT_EQ(formatted(log_ticks(0.8, 12)),
            (std::vector<std::string>{"0.5", "1", "2", "5", "10", "20"}));
  // Wider: powers of ten only.
  EXPECT_EQ(formatted(log_ticks(0.3, 400)),
            (std::vector<std::string>{"0.1", "1", "10", "100", "1000"}));
}

TEST(SvgChartTest, ScaleMapsEndsAndMiddle) {
  const Scale lin{0, 10, 100, 200, false};
  EXPECT_DOUBLE_EQ(lin(0), 100);
  EXPECT_DOUBLE_EQ(lin(5), 150);
  EXPECT_DOUBLE_EQ(lin(10), 200);
  const Scale log{1, 100, 0, 100, true};
  EXPECT_DOUBLE_EQ(log(10), 50);
  // An inverted pixel range (SVG's y grows downwards).
  const Scale y{0, 1, 300, 0, false};
  EXPECT_DOUBLE_EQ(y(1), 0);
}

TEST(SvgChartTest, CanvasEscapesTextAndTooltips) {
  Canvas c(100, 50, "a <chart>");
  c.text(1, 2, "x<y & z", "start");
  c.rect(0, 0, 10, 10, "#000", "node \"a\"");
  const std::string s = c.str();
  EXPECT_NE(s.find("xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  EXPECT_NE(s.find("viewBox=\"0 0 100 50\""), std::string::npos);
  EXPECT_NE(s.find("aria-label=\"a &lt;chart&gt;\""), std::string::npos);
  EXPECT_NE(s.find(">x&lt;y &amp; z</text>"), std::string::npos);
  EXPECT_NE(s.find("<title>node &quot;a&quot;</title>"), std::string::npos);
  EXPECT_EQ(s.find("x<y"), std::string::npos);
}

TEST(SvgChartTest, LineChartHasOnePointPerDatum) {
  LineChart chart;
  chart.series_class = "s";
  chart.series.push_back({"a", "#000", "", {{1, 0.2}, {2, 0.4}, {3, 0.6}, {4, 0.8}, {5, 1.0}}});
  const std::string s = render_lines(chart);
  EXPECT_EQ(count(s, "<polyline"), 1u);
  EXPECT_EQ(polyline_points(s, "s"), 5u);
}

TEST(SvgChartTest, LineChartLogAxis) {
  LineChart chart;
  chart.log_x = true;
  chart.series.push_back({"a", "#000", "", {{0.5, 0.5}, {60, 1.0}}});
  const std::string s = render_lines(chart);
  EXPECT_NE(s.find("(log scale)"), std::string::npos);
  EXPECT_NE(s.find(">100</text>"), std::string::npos);  // a power-of-ten tick
}

TEST(SvgChartTest, ScatterDrawsEveryPointWithItsLabel) {
  ScatterChart chart;
  chart.points = {{10, 100, "fp32 b1", "#111"}, {2.5, 98, "int8/entropy b1", "#222"}};
  chart.frontiers = {{1, 0}};
  chart.y_suffix = "%";
  const std::string s = render_scatter(chart);
  EXPECT_EQ(count(s, "<circle"), 2u);
  EXPECT_NE(s.find(">fp32 b1</text>"), std::string::npos);
  EXPECT_NE(s.find(">int8/entropy b1</text>"), std::string::npos);
  EXPECT_EQ(polyline_points(s, "frontier"), 2u);
  EXPECT_NE(s.find(">100%</text>"), std::string::npos);  // a y tick with its suffix
}

TEST(SvgChartTest, ScatterUsesLogAxisOnlyForPositiveData) {
  ScatterChart chart;
  chart.log_x = true;
  chart.points = {{0.5, 1, "a", "#000"}, {50, 2, "b", "#000"}};
  EXPECT_NE(render_scatter(chart).find("(log scale)"), std::string::npos);
  chart.points[0].x = 0;
  EXPECT_EQ(render_scatter(chart).find("(log scale)"), std::string::npos);
}

TEST(SvgChartTest, BarsAndHBarsDrawOneRectPerValue) {
  BarChart bars;
  bars.groups = {{"batch 1", {{"fp32 b1", 100, "#111"}, {"int8 b1", 400, "#222"}}},
                 {"batch 8", {{"fp32 b8", 700, "#111"}}}};
  bars.legend = {{"fp32", "#111"}, {"int8", "#222"}};
  const std::string b = render_bars(bars);
  EXPECT_EQ(count(b, "<rect"), 3u + 2u);  // bars plus legend swatches
  EXPECT_NE(b.find(">batch 8</text>"), std::string::npos);
  EXPECT_NE(b.find("<title>int8 b1: 400</title>"), std::string::npos);

  HBarChart h;
  h.items = {{"conv1 (Conv)", "", 2.0}, {"fc (Gemm)", "", 0.5}};
  const std::string hs = render_hbars(h);
  EXPECT_EQ(count(hs, "<rect"), 2u);
  EXPECT_NE(hs.find(">conv1 (Conv)</text>"), std::string::npos);
}

TEST(SvgChartTest, LongLabelsAreTruncatedButKeptInTooltips) {
  HBarChart h;
  h.width = 400;
  const std::string name(200, 'n');
  h.items = {{name, name + " (Conv, ref)", 1.0}};
  const std::string s = render_hbars(h);
  EXPECT_NE(s.find("\u2026</text>"), std::string::npos);
  EXPECT_NE(s.find("<title>" + name + " (Conv, ref): 1</title>"), std::string::npos);
}

TEST(SvgChartTest, EmptyChartsAreStillValid) {
  EXPECT_NE(render_scatter({}).find("no data"), std::string::npos);
  EXPECT_NE(render_bars({}).find("no data"), std::string::npos);
  EXPECT_NE(render_lines({}).find("no data"), std::string::npos);
  EXPECT_NE(render_hbars({}).find("</svg>"), std::string::npos);
}

TEST(SvgChartTest, OutputIsDeterministic) {
  ScatterChart chart;
  chart.points = {{1.0 / 3, 99.5, "a", "#000"}, {2.0 / 3, 100, "b", "#000"}};
  EXPECT_EQ(render_scatter(chart), render_scatter(chart));
}

}  // namespace
}  // namespace qf::bench::svg
