// Calibration (and evaluation) samples from the files users have, batched to fit a model input.
//
// Sources, picked by what the path is:
//   X.npy             one array N x <sample shape>
//   X.npz             arrays named like the model inputs (one unnamed array for a one-input model)
//   X.idx / X.idx.gz / *-ubyte(.gz)   IDX (MNIST, Fashion-MNIST); u8 pixels scaled to [0, 1]
//   DIR/ of .npy/.pb  files in name order; each holds one sample or a batch of samples
//   DIR/ of images    PNG/JPEG (stb_image), preprocessed by an ImagePreprocess
// A sample fits an input when its element count equals the input's per-sample element count
// (28x28 fits 1x28x28); dtypes must match after u8 -> f32 scaling. Empty sets, mismatching
// shapes or dtypes and NaN/Inf values are errors naming the file and the sample index.
#pragma once

#include <array>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/status.h"
#include "qforge/tensor.h"

namespace qf::data {

// How an image becomes an input tensor (torchvision's transforms in this order): decode,
// resize so the shorter side is `resize` (bilinear; 0 keeps the size), center crop to
// `crop` x `crop` (0: none), multiply by `scale`, subtract `mean`, divide by `std` per
// channel, lay out as NCHW or NHWC with RGB or BGR channel order, or 1 grey channel.
struct ImagePreprocess {
  int resize = 0;
  int crop = 0;
  float scale = 1.f / 255.f;
  std::array<float, 3> mean = {0.f, 0.f, 0.f};
  std::array<float, 3> std = {1.f, 1.f, 1.f};
  bool bgr = false;
  bool nhwc = false;
  bool grayscale = false;
};

// "imagenet" (resize 256, crop 224, torchvision's mean/std, RGB, NCHW), "none" (scale to
// [0, 1] only), or a comma list `resize=256,crop=224,scale=0.0039215686,mean=0.485/0.456/0.406,
// std=0.229/0.224/0.225,order=rgb|bgr|gray,layout=nchw|nhwc`, optionally starting with a
// named preset that the keys then override.
Result<ImagePreprocess> parse_image_preprocess(std::string_view spec);

// What a model input expects of one sample: its name, element type and shape without the
// batch dimension.
struct InputSpec {
  std::string name;
  DType dtype = DType::kF32;
  Shape sample_shape;
};

class SampleSource {
 public:
  virtual ~SampleSource() = default;
  virtual int64_t size() const = 0;  // number of samples
  // Samples [begin, begin + count), one tensor per input (in the order given to
  // open_samples), each count x sample_shape.
  virtual Result<std::vector<Tensor>> batch(int64_t begin, int64_t count) = 0;
  // For messages: "fashion-mnist/t10k-images-idx3-ubyte.gz (10000 samples)".
  virtual std::string describe() const = 0;
};

Result<std::unique_ptr<SampleSource>> open_samples(const std::filesystem::path& path,
                                                   const std::vector<InputSpec>& inputs,
                                                   const ImagePreprocess& preprocess = {});

}  // namespace qf::data
