#include "data/idx.h"

#include <gtest/gtest.h>

#include "data/dataset.h"

namespace qf::data {
namespace {

std::string idx_header(unsigned char type, std::vector<uint32_t> dims) {
  std::string s = {0, 0, static_cast<char>(type), static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8)
      s.push_back(static_cast<char>((d >> shift) & 0xff));
  }
  return s;
}

TEST(IdxTest, ParsesBigEndianInt32) {
  std::string bytes = idx_header(0x0C, {2});
  bytes += std::string("\x00\x00\x01\x02\xff\xff\xff\xfe", 8);
  auto t = parse_idx(bytes, "mem");
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->data<int32_t>()[0], 258);
  EXPECT_EQ(t->data<int32_t>()[1], -2);
}

TEST(IdxTest, RejectsSizeMismatchAndBadMagic) {
  std::string bytes = idx_header(0x08, {2, 3}) + "abc";
  auto t = parse_idx(bytes, "x.idx");
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(t.status().message().find("x.idx: IDX data has 3 bytes, shape 2x3 needs 6"),
            std::string::npos);
  EXPECT_FALSE(parse_idx("\x01\x02\x03\x04", "y").ok());
}

TEST(IdxTest, ReadsFashionMnistLabelsWhenInstalled) {
  const char* path = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
  auto labels = load_labels(path);
  ASSERT_TRUE(labels.ok()) << labels.status().message();
  ASSERT_EQ(labels->shape(), (Shape{10000}));
  // Fashion-MNIST's test set is balanced: 1000 images per class.
  std::vector<int> counts(10, 0);
  for (int64_t v : labels->span<int64_t>()) ++counts.at(static_cast<size_t>(v));
  for (int c : counts) EXPECT_EQ(c, 1000);
}

TEST(DatasetTest, TopKCountsTiesAgainstTheLabel) {
  Tensor logits = Tensor::from_vector<float>({2, 3}, {0.1f, 0.7f, 0.2f, 0.5f, 0.3f, 0.9f});
  Tensor labels = Tensor::from_vector<int64_t>({2}, {1, 1});
  EXPECT_EQ(count_topk_correct(logits, labels, 0, 1), 1);  // row 0 right, row 1 wrong
  EXPECT_EQ(count_topk_correct(logits, labels, 0, 2), 1);  // row 1: label is third
  EXPECT_EQ(count_topk_correct(logits, labels, 0, 3), 2);
}

}  // namespace
}  // namespace qf::data
