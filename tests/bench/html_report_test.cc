#include "bench/html_report.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stb/stb_image.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

namespace qf::bench {
namespace {

namespace fs = std::filesystem;

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

BenchRow make_row(std::string precision, std::string calib, int64_t batch,
                  std::vector<double> latencies) {
  BenchRow r;
  r.precision = std::move(precision);
  r.calib_method = std::move(calib);
  r.backend = "cpu";
  r.batch = batch;
  r.latencies_ms = latencies;
  r.latency_ms = compute_stats(latencies, {90, 99});
  r.throughput_qps = 1000 / r.latency_ms.median;
  r.weights_bytes = 1 << 20;
  return r;
}

// fp32, bf16 and two INT8 calibrations at batch 1, fp32 and INT8 at batch 8, with labels, and
// a profile with names that need escaping. fp32 b1's median is 10 ms, int8/entropy b1's 2.5 ms.
BenchReport sample_report() {
  BenchReport report;
  report.qforge_version = "0.1.0";
  report.model_path = "/tmp/models/<model&name>.onnx";
  report.model_producer = "pytorch";
  report.model_opset = 17;
  report.backend = "cpu";
  report.cpu = "Test CPU \"8 cores\"";
  BenchRow fp32 = make_row("fp32", "", 1, {9.5, 10, 10, 10.5, 12});
  BenchRow bf16 = make_row("bf16", "", 1, {5, 5.1, 5.2, 5.6, 7});
  bf16.vs_fp32 = Agreement{0.99999, 45, 0.01, 1.0};
  BenchRow minmax = make_row("int8", "minmax", 1, {2.9, 3, 3.1, 3.2, 3.3});
  minmax.vs_fp32 = Agreement{0.998, 28, 0.3, 0.97};
  BenchRow entropy = make_row("int8", "entropy", 1, {2.4, 2.45, 2.5, 2.5, 2.6, 2.7, 4.0});
  entropy.vs_fp32 = Agreement{0.999, 31, 0.2, 0.985};
  entropy.calib_s = 3.5;
  for (int i = 0; i < 20; ++i) {
    entropy.profile.push_back(
        {fmt::format("block{}/conv<{}>&relu", i, i), "qforge::FusedConv", "brgconv", 0.1 * i});
  }
  BenchRow fp32_b8 = make_row("fp32", "", 8, {60, 61, 62, 64, 70});
  BenchRow int8_b8 = make_row("int8", "entropy", 8, {14, 14.5, 15, 15.5, 18});
  int8_b8.vs_fp32 = Agreement{0.999, 31, 0.2, 0.98};
  report.rows = {fp32, bf16, minmax, entropy, fp32_b8, int8_b8};
  const double top1[] = {0.91, 0.91, 0.89, 0.9, 0.91, 0.9};
  for (size_t i = 0; i < report.rows.size(); ++i) {
    report.rows[i].vs_labels = LabelAccuracy{top1[i], 0.99, 1000};
  }
  return report;
}

// The point count of the polyline with the given tooltip (<title>) among those of `css_class`.
size_t polyline_points(const std::string& html, const std::string& css_class,
                       const std::string& title) {
  const size_t title_at = html.find("<title>" + title + "</title></polyline>");
  if (title_at == std::string::npos) return 0;
  const size_t start = html.rfind("<polyline points=\"", title_at);
  const size_t tag_end = html.find('>', start);
  if (html.substr(start, tag_end - start).find("class=\"" + css_class + "\"") ==
      std::string::npos) {
    return 0;
  }
  const size_t p0 = start + std::string("<polyline points=\"").size();
  const std::string pts = html.substr(p0, html.find('"', p0) - p0);
  return pts.empty() ? 0 : count(pts, " ") + 1;
}

TEST(HtmlReportTest, TitleHeadingAndTable) {
  const std::string html = to_html(sample_report());
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("<title>qforge bench report \u2014 &lt;model&amp;name&gt;.onnx</title>"),
            std::string::npos);
  EXPECT_NE(html.find("<h1>qforge bench report"), std::string::npos);
  EXPECT_NE(html.find("<td>int8/entropy</td>"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"num\">4.00x</td>"), std::string::npos);
  EXPECT_NE(html.find("<th>top-5</th>"), std::string::npos);
  EXPECT_NE(html.find("Test CPU &quot;8 cores&quot;"), std::string::npos);
}

TEST(HtmlReportTest, EscapesAllText) {
  const std::string html = to_html(sample_report());
  EXPECT_EQ(html.find("<model"), std::string::npos);
  EXPECT_EQ(html.find("/conv<"), std::string::npos);
  EXPECT_EQ(html.find(">&relu"), std::string::npos);
  EXPECT_NE(html.find("block19/conv&lt;19&gt;&amp;relu"), std::string::npos);
}

TEST(HtmlReportTest, IsSelfContained) {
  std::string html = to_html(sample_report());
  // The SVG namespace is a name, not a fetched resource; nothing else may point outside.
  const std::string ns = "xmlns=\"http://www.w3.org/2000/svg\"";
  EXPECT_GT(count(html, ns), 0u);
  for (size_t pos = html.find(ns); pos != std::string::npos; pos = html.find(ns)) {
    html.erase(pos, ns.size());
  }
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
}

TEST(HtmlReportTest, HasAllCharts) {
  const std::string html = to_html(sample_report());
  // Pareto scatter, throughput bars, CDF, and one per-layer chart for the one profiled row.
  EXPECT_EQ(count(html, "<svg "), 4u);
  EXPECT_EQ(count(html, "</svg>"), 4u);
  EXPECT_NE(html.find("Latency vs top-1 accuracy (labels)"), std::string::npos);
  // Every row is a labelled point.
  for (const char* label :
       {"fp32 b1", "bf16 b1", "int8/minmax b1", "int8/entropy b1", "fp32 b8", "int8/entropy b8"}) {
    EXPECT_NE(html.find(fmt::format(">{}</text>", label)), std::string::npos) << label;
  }
  EXPECT_EQ(count(html, "<circle"), 6u);
  EXPECT_NE(html.find(">batch 1</text>"), std::string::npos);
  EXPECT_NE(html.find(">batch 8</text>"), std::string::npos);
  // Top 15 of 20 layers, the slowest first.
  EXPECT_NE(html.find("int8/entropy b1: top 15 of 20 layers"), std::string::npos);
  EXPECT_NE(html.find(">block19/conv&lt;19&gt;&amp;relu (qforge::FusedConv)</text>"),
            std::string::npos);
  EXPECT_EQ(html.find(">block4/conv&lt;4&gt;&amp;relu (qforge::FusedConv)</text>"),
            std::string::npos);
}

TEST(HtmlReportTest, CdfHasOnePointPerLatency) {
  const BenchReport report = sample_report();
  const std::string html = to_html(report);
  EXPECT_EQ(count(html, "class=\"cdf\""), report.rows.size());
  EXPECT_EQ(polyline_points(html, "cdf", "int8/entropy b1"), 7u);
  EXPECT_EQ(polyline_points(html, "cdf", "fp32 b1"), 5u);
}

TEST(HtmlReportTest, LatencyCdf) {
  const auto cdf = latency_cdf({3, 1, 2, 4});
  ASSERT_EQ(cdf.size(), 4u);
  EXPECT_EQ(cdf[0], (std::pair<double, double>{1, 0.25}));
  EXPECT_EQ(cdf[3], (std::pair<double, double>{4, 1.0}));
  // Long runs are thinned to quantiles, keeping the slowest query.
  std::vector<double> many;
  for (int i = 0; i < 10000; ++i) many.push_back(i);
  const auto thin = latency_cdf(many, 100);
  ASSERT_EQ(thin.size(), 100u);
  EXPECT_EQ(thin[0], (std::pair<double, double>{99, 0.01}));
  EXPECT_EQ(thin.back(), (std::pair<double, double>{9999, 1.0}));
  EXPECT_TRUE(latency_cdf({}).empty());
}

TEST(HtmlReportTest, FallsBackToAgreementWithoutLabels) {
  BenchReport report = sample_report();
  for (BenchRow& r : report.rows) r.vs_labels.reset();
  const std::string html = to_html(report);
  EXPECT_NE(html.find("Latency vs top-1 agreement with fp32"), std::string::npos);
  EXPECT_EQ(html.find("<th>top-1</th>"), std::string::npos);
  // fp32 is the 100% reference point; every row is still plotted.
  EXPECT_EQ(count(html, "<circle"), 6u);
  EXPECT_NE(html.find("<title>fp32 b1: x 10, y 100%</title>"), std::string::npos);
}

TEST(HtmlReportTest, EmptyReportIsValid) {
  const std::string html = to_html(BenchReport{});
  EXPECT_NE(html.find("<h1>qforge bench report"), std::string::npos);
  EXPECT_NE(html.find("</html>"), std::string::npos);
  EXPECT_EQ(count(html, "<svg "), 3u);
}

// ---- rendering in a real browser -------------------------------------------------------------

std::string find_chromium() {
  for (const char* name : {"chromium", "chromium-browser"}) {
    if (std::system(fmt::format("command -v {} >/dev/null 2>&1", name).c_str()) == 0) return name;
  }
  return "";
}

// A private directory for the page, the browser profile and HOME: Chromium insists on a
// writable profile and must not touch the user's.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "qforge_html_report_XXXXXX").string();
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Runs headless Chromium with the given extra flags on the page; returns its stdout. stderr
// (DBus and GPU noise) is discarded; `timeout` guarantees the test cannot hang.
std::string run_chromium(const std::string& chromium, const TempDir& dir, const fs::path& page,
                         const std::string& flags) {
  const std::string cmd = fmt::format(
      "HOME='{0}' timeout 60 {1} --headless --no-sandbox --disable-gpu "
      "--disable-background-networking --no-first-run --user-data-dir='{0}/profile' {2} "
      "'file://{3}' 2>/dev/null",
      dir.path().string(), chromium, flags, page.string());
  std::string out;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  pclose(pipe);
  return out;
}

TEST(HtmlReportBrowserTest, RendersInHeadlessChromium) {
  const std::string chromium = find_chromium();
  if (chromium.empty()) {
    GTEST_SKIP() << "chromium is not installed (scripts/deps.sh installs it); the HTML report "
                    "was not rendered in a browser";
  }
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const fs::path page = dir.path() / "report.html";
  const std::string html = to_html(sample_report());
  { std::ofstream(page) << html; }

  const std::string dom = run_chromium(chromium, dir, page, "--dump-dom");
  ASSERT_FALSE(dom.empty()) << "chromium printed no DOM";
  EXPECT_NE(dom.find("<title>qforge bench report \u2014 &lt;model&amp;name&gt;.onnx</title>"),
            std::string::npos);
  EXPECT_NE(dom.find("<h1>qforge bench report"), std::string::npos);
  EXPECT_NE(dom.find("<td>int8/entropy</td>"), std::string::npos);
  EXPECT_NE(dom.find("4.00x"), std::string::npos);
  // Had escaping failed, the parser would have made elements of the names.
  EXPECT_EQ(dom.find("<model"), std::string::npos);
  EXPECT_EQ(dom.find("<19>"), std::string::npos);
  // The inline SVG survived parsing: as many <svg> elements, with their content.
  EXPECT_EQ(count(dom, "<svg "), count(html, "<svg "));
  EXPECT_EQ(count(dom, "<circle"), count(html, "<circle"));
  EXPECT_EQ(count(dom, "<polyline"), count(html, "<polyline"));

  const fs::path shot = dir.path() / "shot.png";
  run_chromium(chromium, dir, page,
               fmt::format("--screenshot='{}' --window-size=1200,2000", shot.string()));
  ASSERT_TRUE(fs::exists(shot)) << "chromium wrote no screenshot";
  int w = 0, h = 0, channels = 0;
  unsigned char* pixels = stbi_load(shot.c_str(), &w, &h, &channels, 3);
  ASSERT_NE(pixels, nullptr) << stbi_failure_reason();
  EXPECT_EQ(w, 1200);
  EXPECT_EQ(h, 2000);
  // A blank or failed page is one or two colours; text, table shading and charts in the palette
  // give many distinct ones (anti-aliasing adds more).
  std::set<uint32_t> colors;
  for (size_t i = 0; i < static_cast<size_t>(w) * static_cast<size_t>(h); ++i) {
    colors.insert(uint32_t{pixels[3 * i]} << 16 | uint32_t{pixels[3 * i + 1]} << 8 |
                  pixels[3 * i + 2]);
  }
  stbi_image_free(pixels);
  EXPECT_GT(colors.size(), 100u);
}

}  // namespace
}  // namespace qf::bench
