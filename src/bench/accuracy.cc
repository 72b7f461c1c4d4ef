#include "bench/accuracy.h"

#include <cmath>
#include <limits>

namespace qf::bench {

namespace {
int64_t argmax_row(const float* row, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (row[i] > row[best]) best = i;
  }
  return best;
}
}  // namespace

Agreement compare_outputs(const Tensor& reference, const Tensor& test) {
  Agreement a;
  const float* r = reference.data<float>();
  const float* t = test.data<float>();
  const int64_t n = reference.numel();
  double dot = 0, rr = 0, tt = 0, noise = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double x = r[i], y = t[i];
    dot += x * y;
    rr += x * x;
    tt += y * y;
    noise += (x - y) * (x - y);
    a.max_abs_error = std::max(a.max_abs_error, std::fabs(x - y));
  }
  a.cosine = (rr > 0 && tt > 0) ? dot / std::sqrt(rr * tt) : (rr == tt ? 1.0 : 0.0);
  a.sqnr_db = noise > 0 ? 10.0 * std::log10(rr / noise) : std::numeric_limits<double>::infinity();
  const int64_t rows = reference.rank() > 0 ? reference.dim(0) : 1;
  const int64_t cols = rows > 0 ? n / rows : 0;
  int64_t agree = 0;
  for (int64_t i = 0; i < rows && cols > 0; ++i) {
    agree += argmax_row(r + i * cols, cols) == argmax_row(t + i * cols, cols) ? 1 : 0;
  }
  a.top1_agreement = rows > 0 ? static_cast<double>(agree) / static_cast<double>(rows) : 0;
  return a;
}

}  // namespace qf::bench
