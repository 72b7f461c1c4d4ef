// Images as model inputs: decoding PNG/JPEG (stb_image), bilinear resizing (stb_image_resize)
// and the ImagePreprocess steps that turn the pixels into a float tensor.
//
// Decoding and resizing live in image_folder.cc; parse_image_preprocess and the crop/normalise/
// layout steps in image_preprocess.cc.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/calibration_data.h"
#include "qforge/status.h"
#include "qforge/tensor.h"

namespace qf::data {

// 8-bit pixels, rows top to bottom, channels interleaved (HWC): RGB or one grey channel.
struct DecodedImage {
  int width = 0;
  int height = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;  // width * height * channels
};

// .png, .jpg and .jpeg, in any letter case (cameras write .JPG).
bool is_image_file(const std::filesystem::path& path);

// Width and height from the file's header, without decoding the pixels.
struct ImageSize {
  int width = 0;
  int height = 0;
};
Result<ImageSize> read_image_size(const std::filesystem::path& path);

// Decodes to `channels` (3: RGB, 1: grey; stb converts as needed, 16-bit PNGs become 8-bit).
Result<DecodedImage> decode_image(const std::filesystem::path& path, int channels);

// Bilinear (triangle filter, which also averages properly when shrinking) to width x height.
Result<DecodedImage> resize_image(const DecodedImage& image, int width, int height);

// Size after "resize the shorter side to `resize`": the longer side scales by the same factor,
// truncated as torchvision's Resize does. resize == 0 keeps the size.
ImageSize resized_size(ImageSize size, int resize);

// The per-sample shape `pre` makes of an image of `size`: [C, H, W] (NCHW) or [H, W, C]
// (NHWC), C = 1 for grayscale else 3. Fails when the resized image is smaller than the crop
// (torchvision would pad with zeros; a calibration set of padded images is almost certainly
// a wrong setting, so it is refused). `what` names the image in the message.
Result<Shape> preprocessed_shape(ImageSize size, const ImagePreprocess& pre,
                                 const std::string& what);

// Checks the numbers of a preprocessing (non-negative sizes, finite scale/mean, finite
// non-zero std): a struct filled in code has not been through parse_image_preprocess.
Status validate_image_preprocess(const ImagePreprocess& pre);

// The spec string for `pre`, in the syntax parse_image_preprocess reads, for messages.
std::string image_preprocess_str(const ImagePreprocess& pre);

// Resize, center crop, scale/mean/std and layout of a decoded image (whose channel count must
// be 1 for grayscale or 3 otherwise) into an f32 tensor of preprocessed_shape.
Result<Tensor> preprocess_image(const DecodedImage& image, const ImagePreprocess& pre,
                                const std::string& what);

// decode_image + preprocess_image.
Result<Tensor> load_image(const std::filesystem::path& path, const ImagePreprocess& pre);

}  // namespace qf::data
