// Build-time timing of one layer's candidate implementations ("tactics", as TensorRT calls
// them): each candidate is captured as a CUDA graph on the engine's stream, as the plan replays
// it, and its replays are timed between CUDA events.
#pragma once

#include <cuda_runtime.h>

#include <functional>

#include "qforge/status.h"

namespace qf::cuda {

// Device time of one enqueue of `run` on `stream`, in ms: the median of 5 timed replays of its
// CUDA graph (eager launches where capture is refused), each on a cold L2 cache, after 2
// untimed runs (the first launch of a kernel pays for loading it). A run that fails is the
// candidate's refusal, returned as the error.
Result<float> time_tactic(cudaStream_t stream, const std::function<Status()>& run);

}  // namespace qf::cuda
