#include "io/npy.h"

#include <gtest/gtest.h>

namespace qf::io {
namespace {

TEST(NpyTest, RoundTripsEveryRank) {
  for (const Shape& shape : {Shape{}, Shape{5}, Shape{2, 3}, Shape{2, 0, 4}}) {
    Tensor t(DType::kF32, shape);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = 0.5f * static_cast<float>(i);
    auto back = parse_npy(serialize_npy(t), "mem");
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(back->shape(), shape);
    EXPECT_EQ(back->dtype(), DType::kF32);
    for (int64_t i = 0; i < t.numel(); ++i) EXPECT_EQ(back->data<float>()[i], t.data<float>()[i]);
  }
}

TEST(NpyTest, HeaderIsPaddedTo64Bytes) {
  const std::string bytes = serialize_npy(Tensor(DType::kI64, {3}));
  const size_t header_len =
      static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  EXPECT_EQ((10 + header_len) % 64, 0u);
  EXPECT_NE(bytes.find("'descr': '<i8'"), std::string::npos);
  EXPECT_NE(bytes.find("'shape': (3,)"), std::string::npos);
}

TEST(NpyTest, RejectsFortranOrderAndUnknownTypes) {
  std::string bytes = serialize_npy(Tensor(DType::kF32, {2, 2}));
  std::string fortran = bytes;
  fortran.replace(fortran.find("False"), 5, "True ");
  EXPECT_EQ(parse_npy(fortran, "f.npy").status().code(), StatusCode::kUnsupported);
  std::string complex = bytes;
  complex.replace(complex.find("<f4"), 3, "<c8");
  const auto r = parse_npy(complex, "c.npy");
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(r.status().message().find("'<c8'"), std::string::npos);
}

TEST(NpyTest, RejectsTruncatedHeader) {
  const std::string bytes = serialize_npy(Tensor(DType::kF32, {2}));
  const auto r = parse_npy(bytes.substr(0, 20), "t.npy");
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(r.status().message().find("truncated"), std::string::npos);
}

}  // namespace
}  // namespace qf::io
