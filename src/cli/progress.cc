#include "cli/progress.h"

#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace qf::cli {

ProgressBar::ProgressBar(std::string label)
    : label_(std::move(label)), enabled_(isatty(fileno(stderr)) == 1) {}

ProgressBar::~ProgressBar() {
  if (drawn_) fmt::print(stderr, "\n");
}

void ProgressBar::update(std::string_view phase, int64_t done, int64_t total) {
  if (!enabled_ || total <= 0) return;
  const int permille = static_cast<int>(std::clamp<int64_t>(done * 1000 / total, 0, 1000));
  if (permille == last_permille_) return;  // redraw only when something visible changes
  last_permille_ = permille;
  constexpr int kWidth = 30;
  const int filled = permille * kWidth / 1000;
  fmt::print(stderr, "\r{} {:<9} [{:=<{}}{: <{}}] {:>3}% ({}/{})", label_, phase, "", filled, "",
             kWidth - filled, permille / 10, done, total);
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace qf::cli
