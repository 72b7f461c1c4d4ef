#include "bench/latency_split.h"

namespace qf::bench {

SplitRecorder::SplitRecorder(size_t reserve) {
  for (std::vector<double>* v : {&h2d_, &compute_, &d2h_, &enqueue_}) v->reserve(reserve);
}

void SplitRecorder::add(const std::optional<runtime::RunTiming>& timing) {
  if (!timing) {
    ++untimed_;
    return;
  }
  if (timing->h2d_ms) h2d_.push_back(*timing->h2d_ms);
  compute_.push_back(timing->compute_ms);
  if (timing->d2h_ms) d2h_.push_back(*timing->d2h_ms);
  enqueue_.push_back(timing->enqueue_ms);
}

void SplitRecorder::append(const SplitRecorder& other) {
  h2d_.insert(h2d_.end(), other.h2d_.begin(), other.h2d_.end());
  compute_.insert(compute_.end(), other.compute_.begin(), other.compute_.end());
  d2h_.insert(d2h_.end(), other.d2h_.begin(), other.d2h_.end());
  enqueue_.insert(enqueue_.end(), other.enqueue_.begin(), other.enqueue_.end());
  untimed_ += other.untimed_;
}

std::optional<LatencySplit> SplitRecorder::summarize(const std::vector<double>& percentiles) const {
  if (untimed_ > 0 || compute_.empty()) return std::nullopt;
  LatencySplit s;
  // A part is reported only when every query had it: all copied, or none did.
  if (h2d_.size() == compute_.size()) s.h2d_ms = compute_stats(h2d_, percentiles);
  s.compute_ms = compute_stats(compute_, percentiles);
  if (d2h_.size() == compute_.size()) s.d2h_ms = compute_stats(d2h_, percentiles);
  s.enqueue_ms = compute_stats(enqueue_, percentiles);
  return s;
}

}  // namespace qf::bench
