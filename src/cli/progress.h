// A one-line progress bar on stderr for long steps (calibration, evaluation, benchmarks).
// Drawn only when stderr is a terminal, so logs and pipes stay clean.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace qf::cli {

class ProgressBar {
 public:
  explicit ProgressBar(std::string label);
  ~ProgressBar();  // ends the line if anything was drawn
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // `phase` replaces the label's detail ("range", "histogram"); done <= total.
  void update(std::string_view phase, int64_t done, int64_t total);

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  int last_permille_ = -1;
};

}  // namespace qf::cli
