#include "data/image_folder.h"

#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <memory>

namespace qf::data {

namespace {
// stb keeps the reason for its last failure in a global; it may be null when stb was built
// without failure strings.
const char* stb_reason() {
  const char* reason = stbi_failure_reason();
  return reason != nullptr ? reason : "unknown error";
}
}  // namespace

bool is_image_file(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

Result<ImageSize> read_image_size(const std::filesystem::path& path) {
  int width = 0;
  int height = 0;
  int channels = 0;
  if (stbi_info(path.c_str(), &width, &height, &channels) == 0) {
    return invalid_input("{}: cannot read the image header: {}", path.string(), stb_reason());
  }
  return ImageSize{width, height};
}

Result<DecodedImage> decode_image(const std::filesystem::path& path, int channels) {
  if (channels != 1 && channels != 3) {
    return internal_error("decode_image: {} channels requested (1 or 3)", channels);
  }
  DecodedImage image;
  int file_channels = 0;
  std::unique_ptr<stbi_uc, decltype(&stbi_image_free)> pixels(
      stbi_load(path.c_str(), &image.width, &image.height, &file_channels, channels),
      &stbi_image_free);
  if (pixels == nullptr) {
    return invalid_input("{}: cannot decode the image: {}", path.string(), stb_reason());
  }
  image.channels = channels;
  const size_t n = static_cast<size_t>(image.width) * static_cast<size_t>(image.height) *
                   static_cast<size_t>(channels);
  image.pixels.assign(pixels.get(), pixels.get() + n);
  return image;
}

Result<DecodedImage> resize_image(const DecodedImage& image, int width, int height) {
  if (width == image.width && height == image.height) return image;
  DecodedImage out;
  out.width = width;
  out.height = height;
  out.channels = image.channels;
  out.pixels.resize(static_cast<size_t>(width) * static_cast<size_t>(height) *
                    static_cast<size_t>(image.channels));
  // Linear colour space, as PIL (torchvision's default image backend) resizes the stored
  // values without sRGB decoding; no alpha channel since decoding dropped it.
  const int ok = stbir_resize_uint8_generic(
      image.pixels.data(), image.width, image.height, 0, out.pixels.data(), width, height, 0,
      image.channels, STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_CLAMP, STBIR_FILTER_TRIANGLE,
      STBIR_COLORSPACE_LINEAR, nullptr);
  if (ok == 0) {
    return internal_error("resizing a {}x{} image to {}x{} failed", image.width, image.height,
                          width, height);
  }
  return out;
}

ImageSize resized_size(ImageSize size, int resize) {
  if (resize <= 0 || size.width <= 0 || size.height <= 0) return size;
  const bool portrait = size.width <= size.height;
  const int64_t shorter = portrait ? size.width : size.height;
  const int64_t longer = portrait ? size.height : size.width;
  // torchvision: new_long = int(size * long / short), i.e. truncated.
  const int64_t new_longer =
      std::min<int64_t>(int64_t{resize} * longer / shorter, std::numeric_limits<int>::max());
  const int new_long = static_cast<int>(new_longer);
  return portrait ? ImageSize{resize, new_long} : ImageSize{new_long, resize};
}

Result<Tensor> load_image(const std::filesystem::path& path, const ImagePreprocess& pre) {
  QF_ASSIGN_OR_RETURN(DecodedImage image, decode_image(path, pre.grayscale ? 1 : 3));
  return preprocess_image(image, pre, path.string());
}

}  // namespace qf::data
