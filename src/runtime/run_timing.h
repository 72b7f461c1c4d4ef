// What an engine can say about one run beyond its outputs, and trtexec's run-time switches.
//
// Kept apart from engine.h's Engine so that the bench, which consumes these, and the backends,
// which produce them, share plain structs; Engine has the virtual methods that fill and apply
// them (engine.h).
#pragma once

#include <optional>

namespace qf::runtime {

// One run's time split the way trtexec reports it. Device times come from events recorded on the
// engine's stream around the input copies, the enqueued work and the output copies; the enqueue
// time is host time spent handing the work (not the copies) to the device. Absent parts were
// not part of the run (no copies with Engine::run_on_device()).
struct RunTiming {
  std::optional<double> h2d_ms;  // host-to-device copies of the graph inputs
  double compute_ms = 0;         // the work between the copies (host fallbacks included)
  std::optional<double> d2h_ms;  // device-to-host copies of the graph outputs
  double enqueue_ms = 0;         // host: launching the work (a graph launch or every kernel)
};

// trtexec's run-time switches for engines on a device. Unset fields keep the engine's current
// setting; an engine without such a thing refuses a set field.
struct RunOptions {
  std::optional<bool> cuda_graph;  // replay the work as one captured CUDA graph (--useCudaGraph)
  std::optional<bool> spin_wait;   // busy-wait for the device instead of blocking (--useSpinWait)
};

}  // namespace qf::runtime
