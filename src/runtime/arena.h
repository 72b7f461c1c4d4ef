// The activation arena: every intermediate buffer of a plan gets an offset in one allocation,
// assigned from the buffers' lifetimes (the steps that first write and last read them) so that
// buffers whose lifetimes do not overlap share memory. The cpu backend places its host arena
// with it, the cuda backend its device arena.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

namespace qf::runtime {

struct ArenaRequest {
  int64_t bytes = 0;
  int first = 0;  // step that writes the buffer first
  int last = 0;   // step that reads it last (>= first)
};

struct ArenaLayout {
  std::vector<int64_t> offsets;  // one per request, multiples of the alignment
  int64_t size = 0;              // bytes the arena needs: the peak of live buffers after packing
};

// Greedy first fit, largest buffers first: each buffer takes the lowest aligned offset where it
// overlaps no already placed buffer that is live at the same time. (Header-only: it needs
// nothing from oneDNN, and its tests build without the backend.)
inline ArenaLayout plan_arena(const std::vector<ArenaRequest>& requests, int64_t alignment = 64) {
  const size_t n = requests.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (requests[a].bytes != requests[b].bytes) return requests[a].bytes > requests[b].bytes;
    return requests[a].first < requests[b].first;
  });
  auto align_up = [&](int64_t v) { return (v + alignment - 1) / alignment * alignment; };

  ArenaLayout layout;
  layout.offsets.assign(n, 0);
  std::vector<size_t> placed;
  std::vector<std::pair<int64_t, int64_t>> busy;  // [begin, end) of conflicting placed buffers
  for (size_t i : order) {
    const ArenaRequest& r = requests[i];
    busy.clear();
    for (size_t j : placed) {
      const ArenaRequest& p = requests[j];
      if (p.first <= r.last && r.first <= p.last) {
        busy.emplace_back(layout.offsets[j], layout.offsets[j] + p.bytes);
      }
    }
    std::sort(busy.begin(), busy.end());
    int64_t offset = 0;
    for (const auto& [begin, end] : busy) {
      if (offset + r.bytes <= begin) break;  // fits in the gap before this one
      offset = std::max(offset, align_up(end));
    }
    layout.offsets[i] = offset;
    layout.size = std::max(layout.size, offset + r.bytes);
    placed.push_back(i);
  }
  layout.size = align_up(layout.size);
  return layout;
}

}  // namespace qf::runtime
