#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "data/calibration_data.h"
#include "data/image_folder.h"

namespace qf::data {
namespace {

DecodedImage make_image(int width, int height, int channels, std::vector<uint8_t> pixels) {
  return DecodedImage{width, height, channels, std::move(pixels)};
}

// An identity normalisation, so outputs are the (cropped/resized) pixel values themselves.
ImagePreprocess raw_pixels() {
  ImagePreprocess pre;
  pre.scale = 1.f;
  return pre;
}

std::vector<float> values(const Tensor& t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

void expect_near(const std::vector<float>& actual, const std::vector<float>& expected,
                 float tolerance) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    EXPECT_NEAR(actual[i], expected[i], tolerance) << "element " << i;
  }
}

TEST(ImagePreprocessTest, ParsesImagenetPreset) {
  auto pre = parse_image_preprocess("imagenet");
  ASSERT_TRUE(pre.ok()) << pre.status().message();
  EXPECT_EQ(pre->resize, 256);
  EXPECT_EQ(pre->crop, 224);
  EXPECT_FLOAT_EQ(pre->scale, 1.f / 255.f);
  EXPECT_EQ(pre->mean, (std::array<float, 3>{0.485f, 0.456f, 0.406f}));
  EXPECT_EQ(pre->std, (std::array<float, 3>{0.229f, 0.224f, 0.225f}));
  EXPECT_FALSE(pre->bgr);
  EXPECT_FALSE(pre->nhwc);
  EXPECT_FALSE(pre->grayscale);
}

TEST(ImagePreprocessTest, NoneAndEmptyAreTheDefaults) {
  for (const char* spec : {"none", "", " "}) {
    auto pre = parse_image_preprocess(spec);
    ASSERT_TRUE(pre.ok()) << spec << ": " << pre.status().message();
    EXPECT_EQ(pre->resize, 0);
    EXPECT_EQ(pre->crop, 0);
    EXPECT_FLOAT_EQ(pre->scale, 1.f / 255.f);
    EXPECT_EQ(pre->mean, (std::array<float, 3>{0.f, 0.f, 0.f}));
    EXPECT_EQ(pre->std, (std::array<float, 3>{1.f, 1.f, 1.f}));
  }
}

TEST(ImagePreprocessTest, KeysOverrideThePreset) {
  auto pre = parse_image_preprocess(
      "imagenet, crop=192,order=bgr,layout=nhwc,scale=1/127.5,mean=0.5,std=0.25/0.5/1");
  ASSERT_TRUE(pre.ok()) << pre.status().message();
  EXPECT_EQ(pre->resize, 256);
  EXPECT_EQ(pre->crop, 192);
  EXPECT_TRUE(pre->bgr);
  EXPECT_TRUE(pre->nhwc);
  EXPECT_FLOAT_EQ(pre->scale, 1.f / 127.5f);
  EXPECT_EQ(pre->mean, (std::array<float, 3>{0.5f, 0.5f, 0.5f}));
  EXPECT_EQ(pre->std, (std::array<float, 3>{0.25f, 0.5f, 1.f}));

  auto gray = parse_image_preprocess("resize=32,order=gray");
  ASSERT_TRUE(gray.ok()) << gray.status().message();
  EXPECT_TRUE(gray->grayscale);
  EXPECT_FALSE(gray->bgr);
  EXPECT_EQ(gray->resize, 32);
}

TEST(ImagePreprocessTest, RejectsBadSpecsNamingTheItem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"imagenet2", "'imagenet2' is not a preset"},
      {"crop=224,imagenet", "'imagenet' is not key=value"},
      {"crop=-1", "'crop=-1' needs a non-negative integer"},
      {"resize=1.5", "'resize=1.5' needs a non-negative integer"},
      {"scale=abc", "'scale=abc' needs a number"},
      {"scale=1/0", "'scale=1/0' needs a number"},
      {"mean=1/2", "'mean=1/2' needs 1 or 3 numbers"},
      {"std=0", "std finite and non-zero"},
      {"order=rgba", "'order=rgba' must be order=rgb"},
      {"layout=chw", "'layout=chw' must be layout=nchw or nhwc"},
      {"gamma=2", "'gamma=2' has an unknown key"},
  };
  for (const auto& [spec, message] : cases) {
    auto pre = parse_image_preprocess(spec);
    ASSERT_FALSE(pre.ok()) << spec;
    EXPECT_EQ(pre.status().code(), StatusCode::kUsage) << spec;
    EXPECT_NE(pre.status().message().find(message), std::string::npos)
        << spec << ": " << pre.status().message();
  }
}

TEST(ImagePreprocessTest, SpecStringParsesBackToTheSameSettings) {
  auto pre = parse_image_preprocess("imagenet,order=bgr,layout=nhwc");
  ASSERT_TRUE(pre.ok());
  auto again = parse_image_preprocess(image_preprocess_str(*pre));
  ASSERT_TRUE(again.ok()) << image_preprocess_str(*pre) << ": " << again.status().message();
  EXPECT_EQ(again->resize, pre->resize);
  EXPECT_EQ(again->crop, pre->crop);
  EXPECT_FLOAT_EQ(again->scale, pre->scale);
  EXPECT_EQ(again->mean, pre->mean);
  EXPECT_EQ(again->std, pre->std);
  EXPECT_EQ(again->bgr, pre->bgr);
  EXPECT_EQ(again->nhwc, pre->nhwc);
}

// A 2x2 RGB image whose pixels / 255 are tenths, so (x - mean) / std is easy to work out:
//   (x=0,y=0) 0 51 255    (x=1,y=0) 255 102 0
//   (x=0,y=1) 51 0 204    (x=1,y=1) 102 255 153
DecodedImage known_2x2() {
  return make_image(2, 2, 3, {0, 51, 255, 255, 102, 0, 51, 0, 204, 102, 255, 153});
}

ImagePreprocess known_normalisation() {
  ImagePreprocess pre;  // scale 1/255
  pre.mean = {0.5f, 0.2f, 0.4f};
  pre.std = {0.5f, 0.2f, 0.1f};
  return pre;
}

TEST(ImagePreprocessTest, NormalisesPerChannelIntoNchw) {
  auto t = preprocess_image(known_2x2(), known_normalisation(), "mem");
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->shape(), (Shape{3, 2, 2}));
  // R: (0, 1, .2, .4) -> (x - .5) / .5; G: (.2, .4, 0, 1) -> (x - .2) / .2;
  // B: (1, 0, .8, .6) -> (x - .4) / .1.
  expect_near(values(*t), {-1, 1, -0.6f, -0.2f, 0, 1, -1, 4, 6, -4, 4, 2}, 1e-5f);
}

TEST(ImagePreprocessTest, BgrNhwcReordersAfterNormalisingInRgbOrder) {
  ImagePreprocess pre = known_normalisation();
  pre.bgr = true;
  pre.nhwc = true;
  auto t = preprocess_image(known_2x2(), pre, "mem");
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->shape(), (Shape{2, 2, 3}));
  // Each pixel is B, G, R; the mean/std of each value is still its colour's.
  expect_near(values(*t), {6, 0, -1, -4, 1, 1, 4, -1, -0.6f, 2, 4, -0.2f}, 1e-5f);
}

TEST(ImagePreprocessTest, GrayscaleUsesTheFirstMeanAndStd) {
  ImagePreprocess pre;
  pre.grayscale = true;
  pre.mean = {0.5f, 9.f, 9.f};
  pre.std = {0.5f, 9.f, 9.f};
  auto t = preprocess_image(make_image(2, 1, 1, {0, 255}), pre, "mem");
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->shape(), (Shape{1, 1, 2}));
  expect_near(values(*t), {-1, 1}, 1e-6f);
}

// A grey gradient with pixel (x, y) = 10 * y + x.
DecodedImage gradient(int width, int height) {
  std::vector<uint8_t> pixels;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) pixels.push_back(static_cast<uint8_t>(10 * y + x));
  }
  return make_image(width, height, 1, std::move(pixels));
}

TEST(ImagePreprocessTest, CenterCropRoundsHalvesToEvenLikeTorchvision) {
  ImagePreprocess pre = raw_pixels();
  pre.grayscale = true;
  pre.crop = 2;
  // 7x3 -> 2x2: 5 spare columns start at round(2.5) = 2, 1 spare row at round(0.5) = 0.
  auto a = preprocess_image(gradient(7, 3), pre, "mem");
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->shape(), (Shape{1, 2, 2}));
  expect_near(values(*a), {2, 3, 12, 13}, 0.f);

  // 6x4 -> 3x3: 3 spare columns start at round(1.5) = 2, 1 spare row at 0.
  pre.crop = 3;
  auto b = preprocess_image(gradient(6, 4), pre, "mem");
  ASSERT_TRUE(b.ok()) << b.status().message();
  expect_near(values(*b), {2, 3, 4, 12, 13, 14, 22, 23, 24}, 0.f);

  // 5x5 -> 3x3: one spare pixel on each side.
  auto c = preprocess_image(gradient(5, 5), pre, "mem");
  ASSERT_TRUE(c.ok()) << c.status().message();
  expect_near(values(*c), {11, 12, 13, 21, 22, 23, 31, 32, 33}, 0.f);
}

TEST(ImagePreprocessTest, ResizeSetsTheShorterSideAndTruncatesTheLonger) {
  const auto size = [](int w, int h, int r) {
    ImageSize s = resized_size({w, h}, r);
    return std::pair{s.width, s.height};
  };
  EXPECT_EQ(size(500, 375, 256), (std::pair{341, 256}));  // 256 * 500 / 375 = 341.33
  EXPECT_EQ(size(375, 500, 256), (std::pair{256, 341}));
  EXPECT_EQ(size(10, 10, 5), (std::pair{5, 5}));
  EXPECT_EQ(size(30, 20, 0), (std::pair{30, 20}));

  auto imagenet = parse_image_preprocess("imagenet");
  ASSERT_TRUE(imagenet.ok());
  auto shape = preprocessed_shape({500, 375}, *imagenet, "a.jpg");
  ASSERT_TRUE(shape.ok()) << shape.status().message();
  EXPECT_EQ(*shape, (Shape{3, 224, 224}));
  imagenet->nhwc = true;
  EXPECT_EQ(*preprocessed_shape({500, 375}, *imagenet, "a.jpg"), (Shape{224, 224, 3}));
}

TEST(ImagePreprocessTest, ResizeKeepsAConstantImageConstant) {
  std::vector<uint8_t> pixels;
  for (int i = 0; i < 8 * 4; ++i) pixels.insert(pixels.end(), {10, 20, 30});
  ImagePreprocess pre = raw_pixels();
  pre.resize = 2;
  auto t = preprocess_image(make_image(8, 4, 3, pixels), pre, "mem");
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_EQ(t->shape(), (Shape{3, 2, 4}));  // 8x4 -> 4x2
  std::vector<float> expected;
  for (float v : {10.f, 20.f, 30.f}) expected.insert(expected.end(), 8, v);
  expect_near(values(*t), expected, 0.f);
}

TEST(ImagePreprocessTest, ResizeUpsamplesBilinearly) {
  // 2x1 -> 4x2. Output column centres fall at input x = -0.25, 0.25, 0.75, 1.25; edges clamp,
  // so a row 0, 200 becomes 0, 50, 150, 200.
  ImagePreprocess pre = raw_pixels();
  pre.grayscale = true;
  pre.resize = 2;
  auto t = preprocess_image(make_image(2, 1, 1, {0, 200}), pre, "mem");
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_EQ(t->shape(), (Shape{1, 2, 4}));
  expect_near(values(*t), {0, 50, 150, 200, 0, 50, 150, 200}, 1.f);
}

TEST(ImagePreprocessTest, RefusesAnImageSmallerThanTheCrop) {
  ImagePreprocess pre;
  pre.crop = 5;
  auto t = preprocess_image(make_image(4, 6, 3, std::vector<uint8_t>(4 * 6 * 3)), pre, "tiny.png");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(t.status().message().find("tiny.png: the 4x6 (width x height) image"),
            std::string::npos)
      << t.status().message();
  EXPECT_NE(t.status().message().find("smaller than crop=5"), std::string::npos);
}

}  // namespace
}  // namespace qf::data
