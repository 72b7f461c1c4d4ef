// parse_image_preprocess and the steps after decoding: resize, center crop, scale/mean/std,
// channel order and layout.
//
// mean and std are given in RGB order (the order of the decoded image, since the header's
// steps normalise before laying out): "imagenet,order=bgr" therefore stays correct, and a
// Caffe-style BGR mean has to be written R/G/B.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <vector>

#include "data/calibration_data.h"
#include "data/image_folder.h"

namespace qf::data {

namespace {

constexpr std::array<float, 3> kImagenetMean = {0.485f, 0.456f, 0.406f};
constexpr std::array<float, 3> kImagenetStd = {0.229f, 0.224f, 0.225f};

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  while (true) {
    const size_t pos = s.find(sep);
    parts.push_back(trim(s.substr(0, pos)));
    if (pos == std::string_view::npos) break;
    s.remove_prefix(pos + 1);
  }
  return parts;
}

bool parse_float(std::string_view text, float& out) {
  if (text.empty()) return false;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size() && std::isfinite(out);
}

bool parse_int(std::string_view text, int& out) {
  if (text.empty()) return false;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

// 1 or 3 values separated by '/'; one value applies to every channel.
bool parse_triple(std::string_view text, std::array<float, 3>& out) {
  const std::vector<std::string_view> parts = split(text, '/');
  if (parts.size() != 1 && parts.size() != 3) return false;
  for (size_t i = 0; i < 3; ++i) {
    if (!parse_float(parts[parts.size() == 1 ? 0 : i], out[i])) return false;
  }
  return true;
}

ImagePreprocess imagenet_preset() {
  ImagePreprocess pre;
  pre.resize = 256;
  pre.crop = 224;
  pre.mean = kImagenetMean;
  pre.std = kImagenetStd;
  return pre;
}

// torchvision's CenterCrop places the crop at int(round(extra / 2.0)), and Python rounds
// halves to even: 5 spare pixels start the crop at 2, 3 spare pixels at 2.
int center_offset(int extra) {
  const int half = extra / 2;
  if (extra % 2 == 0) return half;
  return half % 2 == 0 ? half : half + 1;
}

// What is wrong with the numbers of `pre`, or "" when nothing is.
std::string preprocess_problem(const ImagePreprocess& pre) {
  if (pre.resize < 0 || pre.crop < 0) {
    return fmt::format("resize ({}) and crop ({}) must not be negative", pre.resize, pre.crop);
  }
  if (!std::isfinite(pre.scale)) return "scale must be finite";
  for (size_t c = 0; c < 3; ++c) {
    if (!std::isfinite(pre.mean[c]) || !std::isfinite(pre.std[c]) || pre.std[c] == 0.f) {
      return fmt::format(
          "mean must be finite and std finite and non-zero (channel {}: mean {}, std {})", c,
          pre.mean[c], pre.std[c]);
    }
  }
  return {};
}

}  // namespace

Status validate_image_preprocess(const ImagePreprocess& pre) {
  const std::string problem = preprocess_problem(pre);
  if (problem.empty()) return Status::ok_status();
  return usage_error("image preprocessing {}: {}", image_preprocess_str(pre), problem);
}

Result<ImagePreprocess> parse_image_preprocess(std::string_view spec) {
  ImagePreprocess pre;  // the "none" preset
  if (trim(spec).empty()) return pre;
  const std::vector<std::string_view> items = split(spec, ',');
  const auto bad = [&](std::string_view item, std::string_view why) {
    return usage_error("image preprocessing '{}': '{}' {}", spec, item, why);
  };
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string_view item = items[i];
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      if (i != 0) {
        return bad(item, "is not key=value (a preset name may only come first)");
      }
      if (item == "imagenet") {
        pre = imagenet_preset();
      } else if (item != "none") {
        return bad(item, "is not a preset (imagenet, none) or key=value");
      }
      continue;
    }
    const std::string_view key = trim(item.substr(0, eq));
    const std::string_view value = trim(item.substr(eq + 1));
    if (key == "resize" || key == "crop") {
      int n = 0;
      if (!parse_int(value, n) || n < 0) return bad(item, "needs a non-negative integer");
      (key == "resize" ? pre.resize : pre.crop) = n;
    } else if (key == "scale") {
      // "1/255" reads better than 0.0039215686 and is exact to float precision.
      const std::vector<std::string_view> parts = split(value, '/');
      float num = 0.f;
      float den = 1.f;
      if (parts.size() > 2 || !parse_float(parts[0], num) ||
          (parts.size() == 2 && (!parse_float(parts[1], den) || den == 0.f))) {
        return bad(item, "needs a number or a fraction like 1/255");
      }
      pre.scale = num / den;
    } else if (key == "mean" || key == "std") {
      if (!parse_triple(value, key == "mean" ? pre.mean : pre.std)) {
        return bad(item, "needs 1 or 3 numbers separated by '/' (R/G/B)");
      }
    } else if (key == "order") {
      if (value == "rgb" || value == "bgr" || value == "gray") {
        pre.bgr = value == "bgr";
        pre.grayscale = value == "gray";
      } else {
        return bad(item, "must be order=rgb, order=bgr or order=gray");
      }
    } else if (key == "layout") {
      if (value != "nchw" && value != "nhwc") return bad(item, "must be layout=nchw or nhwc");
      pre.nhwc = value == "nhwc";
    } else {
      return bad(item, "has an unknown key (resize, crop, scale, mean, std, order, layout)");
    }
  }
  const std::string problem = preprocess_problem(pre);
  if (!problem.empty()) return usage_error("image preprocessing '{}': {}", spec, problem);
  return pre;
}

std::string image_preprocess_str(const ImagePreprocess& pre) {
  return fmt::format(
      "resize={},crop={},scale={},mean={}/{}/{},std={}/{}/{},order={},layout={}", pre.resize,
      pre.crop, pre.scale, pre.mean[0], pre.mean[1], pre.mean[2], pre.std[0], pre.std[1],
      pre.std[2], pre.grayscale ? "gray" : (pre.bgr ? "bgr" : "rgb"), pre.nhwc ? "nhwc" : "nchw");
}

Result<Shape> preprocessed_shape(ImageSize size, const ImagePreprocess& pre,
                                 const std::string& what) {
  const ImageSize resized = resized_size(size, pre.resize);
  int64_t height = resized.height;
  int64_t width = resized.width;
  if (pre.crop > 0) {
    if (resized.width < pre.crop || resized.height < pre.crop) {
      return invalid_input(
          "{}: the {}x{} (width x height) image is {}x{} after resize={}, smaller than "
          "crop={}",
          what, size.width, size.height, resized.width, resized.height, pre.resize, pre.crop);
    }
    height = width = pre.crop;
  }
  const int64_t channels = pre.grayscale ? 1 : 3;
  return pre.nhwc ? Shape{height, width, channels} : Shape{channels, height, width};
}

Result<Tensor> preprocess_image(const DecodedImage& image, const ImagePreprocess& pre,
                                const std::string& what) {
  const int channels = pre.grayscale ? 1 : 3;
  if (image.channels != channels) {
    return internal_error("{}: decoded with {} channels, preprocessing wants {}", what,
                          image.channels, channels);
  }
  QF_RETURN_IF_ERROR(validate_image_preprocess(pre));
  QF_ASSIGN_OR_RETURN(Shape shape, preprocessed_shape({image.width, image.height}, pre, what));
  const ImageSize resized = resized_size({image.width, image.height}, pre.resize);
  QF_ASSIGN_OR_RETURN(DecodedImage src, resize_image(image, resized.width, resized.height));

  const int out_h = pre.crop > 0 ? pre.crop : src.height;
  const int out_w = pre.crop > 0 ? pre.crop : src.width;
  const int top = center_offset(src.height - out_h);
  const int left = center_offset(src.width - out_w);

  // One table per source channel: (p * scale - mean) / std for each 8-bit value p, computed
  // in that order so results match the formula exactly.
  std::array<std::array<float, 256>, 3> lut{};
  for (int c = 0; c < channels; ++c) {
    for (int p = 0; p < 256; ++p) {
      lut[c][p] = (static_cast<float>(p) * pre.scale - pre.mean[c]) / pre.std[c];
    }
  }

  Tensor out(DType::kF32, shape);
  float* dst = out.data<float>();
  for (int y = 0; y < out_h; ++y) {
    const uint8_t* row =
        src.pixels.data() + (static_cast<size_t>(top + y) * static_cast<size_t>(src.width) +
                             static_cast<size_t>(left)) *
                                static_cast<size_t>(channels);
    for (int x = 0; x < out_w; ++x) {
      for (int oc = 0; oc < channels; ++oc) {
        // BGR reverses the channels on output; the source channel picks mean/std (RGB order).
        const int sc = pre.bgr && channels == 3 ? 2 - oc : oc;
        const float v = lut[sc][row[x * channels + sc]];
        const size_t index = pre.nhwc ? (static_cast<size_t>(y) * out_w + x) * channels + oc
                                      : (static_cast<size_t>(oc) * out_h + y) * out_w + x;
        dst[index] = v;
      }
    }
  }
  return out;
}

}  // namespace qf::data
