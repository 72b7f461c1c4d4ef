// From activation statistics to amax (the clipping threshold; scale = amax / 127).
//
// Each function is pure and deterministic. A tensor that is all zeros (max |x| == 0, or an
// empty histogram) has amax 0, which a calibration cache records as scale 0 as TensorRT does.
#pragma once

#include "quant/histogram.h"

namespace qf::quant {

// Entropy (TensorRT's EntropyCalibrator2): over candidate thresholds from bin `start_bin`
// (128) to the last bin, the one whose clipped reference distribution P (outliers folded into
// the last kept bin) has the smallest KL divergence from its `levels`-level (128) quantized
// version Q. Returns the upper edge of the chosen bin.
float entropy_amax(const AbsHistogram& h, int levels = 128, int start_bin = 128);

// The smallest bin edge below which `percentile` percent (in (0, 100]) of |x| lie.
float percentile_amax(const AbsHistogram& h, double percentile = 99.99);

// The bin edge minimizing the expected squared error of symmetric 8-bit quantization with
// that threshold: rounding error (step^2 / 12) for values inside, clipping error for those
// outside, each bin represented by its centre.
float mse_amax(const AbsHistogram& h);

}  // namespace qf::quant
