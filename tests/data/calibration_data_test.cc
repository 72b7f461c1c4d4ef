#include "data/calibration_data.h"

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <stb/stb_image_write.h>
#include <zip.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "data/npz.h"
#include "io/npy.h"
#include "onnx/tensor_proto.h"

namespace qf::data {
namespace {

namespace fs = std::filesystem;

// A fresh, empty folder per test under gtest's temporary directory.
fs::path fresh_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path dir = fs::path(::testing::TempDir()) /
                 (std::string("qf_calib_") + info->test_suite_name() + "_" + info->name());
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write_npy(const fs::path& path, const Tensor& t) {
  ASSERT_TRUE(io::write_npy(path, t).ok()) << path;
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  ASSERT_TRUE(out.good()) << path;
}

struct NpzEntry {
  std::string name;  // without .npy
  Tensor tensor;
  bool deflate = false;
};

// Writes an .npz as numpy does: np.savez stores entries, np.savez_compressed deflates them.
void write_npz(const fs::path& path, const std::vector<NpzEntry>& entries) {
  int error = 0;
  zip_t* archive = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
  ASSERT_NE(archive, nullptr) << "zip_open failed: " << error;
  // zip_source_buffer does not copy: the bytes must live until zip_close.
  std::vector<std::string> buffers;
  buffers.reserve(entries.size());
  for (const NpzEntry& e : entries) {
    buffers.push_back(io::serialize_npy(e.tensor));
    zip_source_t* source =
        zip_source_buffer(archive, buffers.back().data(), buffers.back().size(), 0);
    ASSERT_NE(source, nullptr);
    const zip_int64_t index =
        zip_file_add(archive, (e.name + ".npy").c_str(), source, ZIP_FL_OVERWRITE);
    ASSERT_GE(index, 0) << zip_strerror(archive);
    ASSERT_EQ(zip_set_file_compression(archive, static_cast<zip_uint64_t>(index),
                                       e.deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0),
              0);
  }
  ASSERT_EQ(zip_close(archive), 0);
}

// IDX bytes: magic 0 0 <type> <rank>, big-endian u32 dims, then the data.
std::string idx_u8(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data) {
  std::string s = {0, 0, 0x08, static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8)
      s.push_back(static_cast<char>((d >> shift) & 0xff));
  }
  s.append(data.begin(), data.end());
  return s;
}

void write_gzip(const fs::path& path, const std::string& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  ASSERT_EQ(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(file), Z_OK);
}

void write_png(const fs::path& path, int width, int height, int channels,
               const std::vector<uint8_t>& pixels) {
  ASSERT_NE(stbi_write_png(path.c_str(), width, height, channels, pixels.data(), width * channels),
            0)
      << path;
}

void write_pb(const fs::path& path, const Tensor& t, const std::string& name) {
  onnx::TensorProto proto;
  onnx_io::tensor_to_proto(t, name, &proto);
  write_bytes(path, proto.SerializeAsString());
}

// Samples i = 0..n-1 of `per` floats each, element j of sample i = 10 * i + j.
Tensor counting(int64_t n, Shape sample_shape) {
  Shape shape{n};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  Tensor t(DType::kF32, shape);
  const int64_t per = shape_numel(sample_shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = float(10 * (i / per) + i % per);
  return t;
}

std::vector<float> floats(const Tensor& t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

InputSpec f32_input(Shape sample_shape, std::string name = "x") {
  return InputSpec{std::move(name), DType::kF32, std::move(sample_shape)};
}

std::unique_ptr<SampleSource> open_ok(const fs::path& path, const std::vector<InputSpec>& inputs,
                                      const ImagePreprocess& pre = {}) {
  auto source = open_samples(path, inputs, pre);
  EXPECT_TRUE(source.ok()) << source.status().message();
  return source.ok() ? std::move(source).value() : nullptr;
}

// Expects failure with `code` and a message containing every one of `parts`.
template <typename T>
void expect_error(const Result<T>& r, StatusCode code, const std::vector<std::string>& parts) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), code) << r.status().message();
  for (const std::string& part : parts) {
    EXPECT_NE(r.status().message().find(part), std::string::npos)
        << "'" << part << "' not in: " << r.status().message();
  }
}

// ---- single arrays ------------------------------------------------------------------------

TEST(CalibrationDataTest, NpyOfNSamplesFitsByElementCount) {
  const fs::path file = fresh_dir() / "calib.npy";
  write_npy(file, counting(5, {2, 3}));
  auto source = open_ok(file, {f32_input({1, 2, 3})});  // 2x3 per sample fits 1x2x3
  ASSERT_NE(source, nullptr);
  EXPECT_EQ(source->size(), 5);
  EXPECT_EQ(source->describe(), file.string() + " (5 samples)");
  auto batch = source->batch(1, 2);
  ASSERT_TRUE(batch.ok()) << batch.status().message();
  ASSERT_EQ(batch->size(), 1u);
  EXPECT_EQ((*batch)[0].shape(), (Shape{2, 1, 2, 3}));
  EXPECT_EQ(floats((*batch)[0]),
            (std::vector<float>{10, 11, 12, 13, 14, 15, 20, 21, 22, 23, 24, 25}));
  auto all = source->batch(0, 5);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ((*all)[0].shape(), (Shape{5, 1, 2, 3}));
}

TEST(CalibrationDataTest, AnArrayOfOneSampleShapeIsOneSample) {
  const fs::path dir = fresh_dir();
  write_npy(dir / "one.npy", counting(1, {6}).reshaped({2, 3}));
  auto source = open_ok(dir / "one.npy", {f32_input({1, 2, 3})});
  ASSERT_NE(source, nullptr);
  EXPECT_EQ(source->size(), 1);
  // A 1-D array of k values is k samples of a scalar input.
  write_npy(dir / "scalars.npy", Tensor::from_vector<float>({3}, {1, 2, 3}));
  auto scalars = open_ok(dir / "scalars.npy", {f32_input({})});
  ASSERT_NE(scalars, nullptr);
  EXPECT_EQ(scalars->size(), 3);
}

TEST(CalibrationDataTest, U8NpyIsScaledToUnitRangeForFloatInputs) {
  const fs::path file = fresh_dir() / "pixels.npy";
  write_npy(file, Tensor::from_vector<uint8_t>({2, 2}, {0, 51, 255, 102}));
  auto source = open_ok(file, {f32_input({2})});
  ASSERT_NE(source, nullptr);
  auto batch = source->batch(0, 2);
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(floats((*batch)[0]), (std::vector<float>{0.f, 51.f / 255.f, 1.f, 102.f / 255.f}));

  // A u8 input takes the bytes as they are.
  auto raw = open_ok(file, {InputSpec{"x", DType::kU8, {2}}});
  ASSERT_NE(raw, nullptr);
  auto raw_batch = raw->batch(1, 1);
  ASSERT_TRUE(raw_batch.ok());
  EXPECT_EQ((*raw_batch)[0].dtype(), DType::kU8);
  EXPECT_EQ((*raw_batch)[0].data<uint8_t>()[1], 102);
}

TEST(CalibrationDataTest, F64IsConvertedToF32) {
  const fs::path file = fresh_dir() / "doubles.npy";
  write_npy(file, Tensor::from_vector<double>({2, 1}, {0.1, -2.5}));
  auto source = open_ok(file, {f32_input({1})});
  ASSERT_NE(source, nullptr);
  auto batch = source->batch(0, 2);
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ((*batch)[0].dtype(), DType::kF32);
  EXPECT_EQ(floats((*batch)[0]), (std::vector<float>{0.1f, -2.5f}));
}

TEST(CalibrationDataTest, RefusesAnElementTypeThatDoesNotFit) {
  const fs::path dir = fresh_dir();
  write_npy(dir / "ints.npy", Tensor::from_vector<int32_t>({2, 2}, {1, 2, 3, 4}));
  expect_error(open_samples(dir / "ints.npy", {f32_input({2})}), StatusCode::kInvalidInput,
               {"ints.npy", "element type s32 does not fit input 'x' (f32)", "u8"});
  // Integer inputs need exactly their type.
  expect_error(open_samples(dir / "ints.npy", {InputSpec{"ids", DType::kI64, {2}}}),
               StatusCode::kInvalidInput, {"ints.npy", "input 'ids' (s64): expected s64"});
  write_npy(dir / "ids.npy", Tensor::from_vector<int64_t>({2, 2}, {1, 2, 3, 4}));
  auto ids = open_ok(dir / "ids.npy", {InputSpec{"ids", DType::kI64, {2}}});
  ASSERT_NE(ids, nullptr);
  EXPECT_EQ(ids->size(), 2);
}

TEST(CalibrationDataTest, NamesTheFirstSampleHoldingNanOrInf) {
  const fs::path dir = fresh_dir();
  Tensor t = counting(5, {4});
  t.data<float>()[3 * 4 + 2] = std::numeric_limits<float>::quiet_NaN();
  t.data<float>()[4 * 4 + 0] = std::numeric_limits<float>::infinity();
  write_npy(dir / "nan.npy", t);
  expect_error(open_samples(dir / "nan.npy", {f32_input({4})}), StatusCode::kInvalidInput,
               {"nan.npy: sample 3 of input 'x' holds nan at element 2"});

  Tensor d = Tensor::from_vector<double>({3, 1}, {1, 1e300, 2});  // too large for f32
  write_npy(dir / "huge.npy", d);
  expect_error(open_samples(dir / "huge.npy", {f32_input({1})}), StatusCode::kInvalidInput,
               {"huge.npy: sample 1 of input 'x' holds inf after conversion from f64 to f32"});
}

TEST(CalibrationDataTest, WrongShapeNamesTheFileAndBothShapes) {
  const fs::path file = fresh_dir() / "wrong.npy";
  write_npy(file, counting(5, {3}));
  expect_error(open_samples(file, {f32_input({4})}), StatusCode::kInvalidInput,
               {"wrong.npy: an array of shape 5x3 (15 elements) is neither one sample of input "
                "'x' (shape 4, 4 elements) nor N samples"});
  // Nested batches are not guessed at.
  write_npy(file, counting(10, {4}).reshaped({2, 5, 4}));
  expect_error(open_samples(file, {f32_input({4})}), StatusCode::kInvalidInput, {"2x5x4"});
}

TEST(CalibrationDataTest, EmptyArrayIsAnError) {
  const fs::path file = fresh_dir() / "empty.npy";
  write_npy(file, Tensor(DType::kF32, {0, 4}));
  expect_error(open_samples(file, {f32_input({4})}), StatusCode::kInvalidInput,
               {"empty.npy: holds no samples (shape 0x4)"});
}

TEST(CalibrationDataTest, TwoInputsNeedAnNpz) {
  const fs::path dir = fresh_dir();
  write_npy(dir / "a.npy", counting(2, {4}));
  const std::vector<InputSpec> two = {f32_input({4}, "image"), f32_input({1}, "scale")};
  expect_error(open_samples(dir / "a.npy", two), StatusCode::kUnsupported,
               {"a.npy: the model has 2 inputs ('image', 'scale')", ".npz",
                "np.savez(FILE, image=..., scale=...)"});
  expect_error(open_samples(dir, two), StatusCode::kUnsupported, {".npz"});
}

TEST(CalibrationDataTest, PbFileIsOneArray) {
  const fs::path file = fresh_dir() / "input_0.pb";
  write_pb(file, counting(3, {2}), "whatever");
  auto source = open_ok(file, {f32_input({2})});
  ASSERT_NE(source, nullptr);
  EXPECT_EQ(source->size(), 3);
  auto batch = source->batch(2, 1);
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(floats((*batch)[0]), (std::vector<float>{20, 21}));
}

TEST(CalibrationDataTest, GzippedIdxIsScaledToUnitRange) {
  const fs::path file = fresh_dir() / "t10k-images-idx3-ubyte.gz";
  write_gzip(file, idx_u8({3, 2, 2}, {0, 255, 51, 102, 1, 2, 3, 4, 5, 6, 7, 8}));
  auto source = open_ok(file, {f32_input({1, 2, 2})});
  ASSERT_NE(source, nullptr);
  EXPECT_EQ(source->size(), 3);
  EXPECT_EQ(source->describe(), file.string() + " (3 samples)");
  auto batch = source->batch(0, 1);
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ((*batch)[0].shape(), (Shape{1, 1, 2, 2}));
  EXPECT_EQ(floats((*batch)[0]), (std::vector<float>{0.f, 1.f, 51.f / 255.f, 102.f / 255.f}));
}

TEST(CalibrationDataTest, PlainIdxByExtension) {
  const fs::path file = fresh_dir() / "samples.idx";
  write_bytes(file, idx_u8({2, 3}, {0, 0, 0, 255, 255, 255}));
  auto source = open_ok(file, {f32_input({3})});
  ASSERT_NE(source, nullptr);
  EXPECT_EQ(source->size(), 2);
}

TEST(CalibrationDataTest, MissingPathAndUnknownKind) {
  const fs::path dir = fresh_dir();
  expect_error(open_samples(dir / "nope.npy", {f32_input({1})}), StatusCode::kInvalidInput,
               {"nope.npy: no such file or folder"});
  write_bytes(dir / "data.csv", "1,2\n");
  expect_error(open_samples(dir / "data.csv", {f32_input({2})}), StatusCode::kUnsupported,
               {"data.csv: not a known sample source"});
}

TEST(CalibrationDataTest, BatchOutsideTheSetIsAnError) {
  const fs::path file = fresh_dir() / "calib.npy";
  write_npy(file, counting(3, {2}));
  auto source = open_ok(file, {f32_input({2})});
  ASSERT_NE(source, nullptr);
  expect_error(source->batch(2, 2), StatusCode::kInternal, {"[2, 4)", "3 samples"});
  expect_error(source->batch(-1, 1), StatusCode::kInternal, {});
}

TEST(CalibrationDataTest, InputsNeedAFixedSampleShape) {
  const fs::path file = fresh_dir() / "calib.npy";
  write_npy(file, counting(3, {2}));
  expect_error(open_samples(file, {f32_input({-1, 2})}), StatusCode::kUnsupported,
               {"input 'x': sample shape -1x2 has unknown or empty dimensions"});
  expect_error(open_samples(file, {}), StatusCode::kInvalidInput, {"no inputs"});
}

TEST(CalibrationDataTest, HalfPrecisionDataConvertsAndEmptyBatchesWork) {
  const fs::path file = fresh_dir() / "half.npy";
  Tensor h(DType::kF16, {2, 1});
  h.data<f16_t>()[0] = f32_to_f16(0.5f);
  h.data<f16_t>()[1] = f32_to_f16(-3.f);
  write_npy(file, h);
  auto source = open_ok(file, {f32_input({1})});
  ASSERT_NE(source, nullptr);
  auto batch = source->batch(0, 2);
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(floats((*batch)[0]), (std::vector<float>{0.5f, -3.f}));
  auto none = source->batch(2, 0);
  ASSERT_TRUE(none.ok()) << none.status().message();
  EXPECT_EQ((*none)[0].shape(), (Shape{0, 1}));
}

// ---- .npz ---------------------------------------------------------------------------------

TEST(NpzTest, ReadsStoredAndDeflatedEntries) {
  const fs::path file = fresh_dir() / "pair.npz";
  write_npz(file, {{"a", counting(2, {3}), false}, {"b", counting(4, {1}), true}});
  {
    // The fixture really has one entry of each kind.
    int error = 0;
    zip_t* archive = zip_open(file.c_str(), ZIP_RDONLY, &error);
    ASSERT_NE(archive, nullptr);
    zip_stat_t st;
    ASSERT_EQ(zip_stat(archive, "a.npy", 0, &st), 0);
    EXPECT_EQ(st.comp_method, ZIP_CM_STORE);
    ASSERT_EQ(zip_stat(archive, "b.npy", 0, &st), 0);
    EXPECT_EQ(st.comp_method, ZIP_CM_DEFLATE);
    zip_discard(archive);
  }
  auto archive = NpzArchive::open(file);
  ASSERT_TRUE(archive.ok()) << archive.status().message();
  EXPECT_EQ(archive->names(), (std::vector<std::string>{"a", "b"}));
  auto a = archive->read("a");
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->shape(), (Shape{2, 3}));
  EXPECT_EQ(floats(*a), floats(counting(2, {3})));
  auto b = archive->read("b");
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(floats(*b), (std::vector<float>{0, 10, 20, 30}));
  expect_error(archive->read("c"), StatusCode::kInvalidInput, {"pair.npz: array 'c' not found"});
}

TEST(NpzTest, RefusesAFileThatIsNotAZip) {
  const fs::path file = fresh_dir() / "bad.npz";
  write_bytes(file, "not a zip archive at all");
  expect_error(NpzArchive::open(file), StatusCode::kInvalidInput,
               {"bad.npz: cannot open as a .npz (zip) archive"});
}

TEST(NpzTest, FeedsSeveralInputsByNameInInputOrder) {
  const fs::path file = fresh_dir() / "inputs.npz";
  write_npz(file, {{"scale", counting(3, {1}), true},
                   {"image", counting(3, {2, 2}), false},
                   {"labels", Tensor::from_vector<int64_t>({3}, {1, 2, 3}), false}});
  auto source = open_ok(file, {f32_input({1, 2, 2}, "image"), f32_input({}, "scale")});
  ASSERT_NE(source, nullptr);
  EXPECT_EQ(source->size(), 3);
  auto batch = source->batch(1, 2);
  ASSERT_TRUE(batch.ok()) << batch.status().message();
  ASSERT_EQ(batch->size(), 2u);
  EXPECT_EQ((*batch)[0].shape(), (Shape{2, 1, 2, 2}));
  EXPECT_EQ(floats((*batch)[0]), (std::vector<float>{10, 11, 12, 13, 20, 21, 22, 23}));
  EXPECT_EQ((*batch)[1].shape(), (Shape{2}));
  EXPECT_EQ(floats((*batch)[1]), (std::vector<float>{10, 20}));
}

TEST(NpzTest, UnnamedArrayFeedsAOneInputModel) {
  const fs::path dir = fresh_dir();
  write_npz(dir / "x.npz", {{"arr_0", counting(2, {2}), true}});
  auto source = open_ok(dir / "x.npz", {f32_input({2}, "input.1")});
  ASSERT_NE(source, nullptr);
  EXPECT_EQ(source->size(), 2);
  // An input name with characters np.savez keys cannot have matches its sanitized form.
  write_npz(dir / "y.npz", {{"input_0", counting(2, {2}), false}, {"other", counting(1, {2})}});
  auto sanitized = open_ok(dir / "y.npz", {f32_input({2}, "input:0")});
  ASSERT_NE(sanitized, nullptr);
  EXPECT_EQ(sanitized->size(), 2);
}

TEST(NpzTest, ErrorsNameTheArchiveAndArray) {
  const fs::path dir = fresh_dir();
  write_npz(dir / "m.npz", {{"a", counting(3, {2})}, {"b", counting(2, {2})}});
  expect_error(open_samples(dir / "m.npz", {f32_input({2}, "c")}), StatusCode::kInvalidInput,
               {"m.npz: no array for input 'c' (the archive holds a, b)", "np.savez(FILE, c=...)"});
  expect_error(open_samples(dir / "m.npz", {f32_input({2}, "a"), f32_input({2}, "b")}),
               StatusCode::kInvalidInput,
               {"m.npz: array 'a' holds 3 samples but array 'b' holds 2"});
  expect_error(open_samples(dir / "m.npz", {f32_input({3}, "a")}), StatusCode::kInvalidInput,
               {"m.npz: array 'a': an array of shape 3x2"});
  Tensor nan = counting(3, {2});
  nan.data<float>()[5] = std::nanf("");
  write_npz(dir / "n.npz", {{"a", nan, true}});
  expect_error(open_samples(dir / "n.npz", {f32_input({2}, "a")}), StatusCode::kInvalidInput,
               {"n.npz: array 'a': sample 2 of input 'a' holds nan"});
}

// ---- folders of tensor files --------------------------------------------------------------

TEST(CalibrationDataTest, FolderOfTensorFilesInNameOrder) {
  const fs::path dir = fresh_dir();
  // b holds one sample as 1x4, a holds two, c is a .pb with one sample as a bare 4.
  write_npy(dir / "b.npy", Tensor::from_vector<float>({1, 4}, {1, 1, 1, 1}));
  write_npy(dir / "a.npy", Tensor::from_vector<float>({2, 4}, {0, 0, 0, 0, 0.5, 0.5, 0.5, 0.5}));
  write_pb(dir / "c.pb", Tensor::from_vector<float>({4}, {2, 2, 2, 2}), "");
  write_bytes(dir / "labels.txt", "1\n2\n3\n4\n");  // ignored
  auto source = open_ok(dir, {f32_input({2, 2})});
  ASSERT_NE(source, nullptr);
  EXPECT_EQ(source->size(), 4);
  EXPECT_EQ(source->describe(), dir.string() + " (4 samples in 3 files)");
  auto batch = source->batch(1, 3);  // spans all three files
  ASSERT_TRUE(batch.ok()) << batch.status().message();
  EXPECT_EQ((*batch)[0].shape(), (Shape{3, 2, 2}));
  EXPECT_EQ(floats((*batch)[0]), (std::vector<float>{0.5, 0.5, 0.5, 0.5, 1, 1, 1, 1, 2, 2, 2, 2}));
  auto last = source->batch(3, 1);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(floats((*last)[0]), (std::vector<float>{2, 2, 2, 2}));
}

TEST(CalibrationDataTest, FolderErrorsNameTheFileAndSample) {
  const fs::path dir = fresh_dir();
  write_npy(dir / "000.npy", counting(2, {3}));
  Tensor bad = counting(3, {3});
  bad.data<float>()[1 * 3 + 1] = -std::numeric_limits<float>::infinity();
  write_npy(dir / "001.npy", bad);
  // Sample 1 of 001.npy is sample 3 of the folder.
  expect_error(open_samples(dir, {f32_input({3})}), StatusCode::kInvalidInput,
               {(dir / "001.npy").string() + ": sample 3 of input 'x' holds -inf at element 1",
                "(sample 1 of this file)"});
  write_npy(dir / "001.npy", counting(1, {4}));
  expect_error(open_samples(dir, {f32_input({3})}), StatusCode::kInvalidInput,
               {(dir / "001.npy").string() + " (sample 2): an array of shape 1x4"});
  write_npy(dir / "001.npy", Tensor(DType::kF32, {0, 3}));
  expect_error(open_samples(dir, {f32_input({3})}), StatusCode::kInvalidInput,
               {"001.npy (sample 2): holds no samples"});
}

TEST(CalibrationDataTest, EmptyAndMixedFoldersAreErrors) {
  const fs::path dir = fresh_dir();
  expect_error(open_samples(dir, {f32_input({3})}), StatusCode::kInvalidInput,
               {dir.string() + ": no samples: expected .npy/.pb files or .png/.jpg/.jpeg images"});
  fs::create_directories(dir / "class0");
  write_png(dir / "class0" / "a.png", 1, 1, 3, {1, 2, 3});
  expect_error(open_samples(dir, {f32_input({3})}), StatusCode::kInvalidInput,
               {"subfolders are not searched"});
  write_png(dir / "a.png", 1, 1, 3, {1, 2, 3});
  write_npy(dir / "b.npy", counting(1, {3}));
  expect_error(open_samples(dir, {f32_input({3})}), StatusCode::kInvalidInput,
               {"holds both tensor files (1 .npy/.pb, e.g. b.npy) and images (1, e.g. a.png)"});
}

// ---- image folders ------------------------------------------------------------------------

TEST(CalibrationDataTest, ImageFolderDecodesAndNormalisesInNameOrder) {
  const fs::path dir = fresh_dir();
  // Two 2x1 RGB images; pixels / 255 are tenths.
  write_png(dir / "b.png", 2, 1, 3, {255, 0, 51, 102, 204, 153});
  write_png(dir / "a.PNG", 2, 1, 3, {0, 0, 0, 255, 255, 255});
  ImagePreprocess pre;
  pre.mean = {0.5f, 0.5f, 0.5f};
  pre.std = {0.5f, 0.5f, 0.25f};
  auto source = open_ok(dir, {f32_input({3, 1, 2})}, pre);
  ASSERT_NE(source, nullptr);
  EXPECT_EQ(source->size(), 2);
  EXPECT_EQ(source->describe(), dir.string() + " (2 images)");
  auto batch = source->batch(0, 2);
  ASSERT_TRUE(batch.ok()) << batch.status().message();
  EXPECT_EQ((*batch)[0].shape(), (Shape{2, 3, 1, 2}));
  // a.PNG: R (0, 1), G (0, 1), B (0, 1); b.png: R (1, .4), G (0, .8), B (.2, .6).
  const std::vector<float> expected = {-1, 1, -1, 1, -2, 2, 1, -0.2f, -1, 0.6f, -1.2f, 0.4f};
  const std::vector<float> actual = floats((*batch)[0]);
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) EXPECT_NEAR(actual[i], expected[i], 1e-5) << i;
}

TEST(CalibrationDataTest, ImageFolderCropsToTheModelsShape) {
  const fs::path dir = fresh_dir();
  // 4x4 grey gradient, pixel (x, y) = 10 * y + x; crop 2 keeps x, y in {1, 2}.
  std::vector<uint8_t> pixels;
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 4; ++x) pixels.push_back(static_cast<uint8_t>(10 * y + x));
  }
  write_png(dir / "g.png", 4, 4, 1, pixels);
  auto pre = parse_image_preprocess("crop=2,scale=1,order=gray");
  ASSERT_TRUE(pre.ok());
  auto source = open_ok(dir / "g.png", {f32_input({2, 2})}, *pre);  // 1x2x2 fits 2x2
  ASSERT_NE(source, nullptr);
  EXPECT_EQ(source->describe(), (dir / "g.png").string() + " (1 image)");
  auto batch = source->batch(0, 1);
  ASSERT_TRUE(batch.ok()) << batch.status().message();
  EXPECT_EQ(floats((*batch)[0]), (std::vector<float>{11, 12, 21, 22}));
}

TEST(CalibrationDataTest, ImageShapeMismatchSaysWhatPreprocessingMade) {
  const fs::path dir = fresh_dir();
  write_png(dir / "a.png", 3, 2, 3, std::vector<uint8_t>(3 * 2 * 3, 7));
  expect_error(open_samples(dir, {f32_input({3, 224, 224})}, {}), StatusCode::kInvalidInput,
               {"a.png: preprocessing 'resize=0,crop=0",
                "makes this 3x2 (width x height) image a "
                "3x2x3 sample, but input 'x' wants 3x224x224"});
  // The same numbers in the other layout get a pointed hint.
  expect_error(open_samples(dir, {f32_input({2, 3, 3})}, {}), StatusCode::kInvalidInput,
               {"the model wants layout=nhwc"});
  ImagePreprocess crop;
  crop.crop = 3;
  expect_error(open_samples(dir, {f32_input({3, 3, 3})}, crop), StatusCode::kInvalidInput,
               {"a.png: the 3x2 (width x height) image", "smaller than crop=3"});
}

TEST(CalibrationDataTest, ImagesFeedOneFloatInput) {
  const fs::path dir = fresh_dir();
  write_png(dir / "a.png", 1, 1, 3, {1, 2, 3});
  expect_error(open_samples(dir, {InputSpec{"x", DType::kU8, {3, 1, 1}}}), StatusCode::kUnsupported,
               {"images can only feed float inputs; input 'x' is u8"});
  expect_error(open_samples(dir, {f32_input({3, 1, 1}, "a"), f32_input({1}, "b")}),
               StatusCode::kUnsupported, {"only a .npz archive can feed several inputs"});
  // A preprocessing filled in code is checked as parse_image_preprocess would.
  ImagePreprocess zero_std;
  zero_std.std = {1.f, 0.f, 1.f};
  expect_error(open_samples(dir, {f32_input({3, 1, 1})}, zero_std), StatusCode::kUsage,
               {"std finite and non-zero (channel 1"});
}

TEST(CalibrationDataTest, UndecodableImageFailsInBatchNamingFileAndSample) {
  const fs::path dir = fresh_dir();
  write_png(dir / "0.png", 2, 2, 3, std::vector<uint8_t>(12, 9));
  // A valid PNG header (so the size check at open passes) with its pixel data cut off.
  write_png(dir / "1.png", 2, 2, 3, std::vector<uint8_t>(12, 9));
  std::string bytes;
  {
    std::ifstream in(dir / "1.png", std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  write_bytes(dir / "1.png", bytes.substr(0, 40));
  // The first 40 bytes hold the signature and the IHDR chunk: the size is readable.
  auto source = open_samples(dir, {f32_input({3, 2, 2})});
  ASSERT_TRUE(source.ok()) << source.status().message();
  auto good = (*source)->batch(0, 1);
  EXPECT_TRUE(good.ok()) << good.status().message();
  expect_error((*source)->batch(0, 2), StatusCode::kInvalidInput,
               {"sample 1: " + (dir / "1.png").string() + ": cannot decode the image"});
}

TEST(CalibrationDataTest, JpegImagesDecode) {
  const fs::path dir = fresh_dir();
  std::vector<uint8_t> pixels;
  for (int i = 0; i < 16 * 16; ++i) pixels.insert(pixels.end(), {200, 100, 50});
  ASSERT_NE(stbi_write_jpg((dir / "a.jpg").c_str(), 16, 16, 3, pixels.data(), 95), 0);
  auto pre = parse_image_preprocess("resize=8,scale=1");
  ASSERT_TRUE(pre.ok());
  auto source = open_ok(dir, {f32_input({3, 8, 8})}, *pre);
  ASSERT_NE(source, nullptr);
  auto batch = source->batch(0, 1);
  ASSERT_TRUE(batch.ok()) << batch.status().message();
  const std::vector<float> v = floats((*batch)[0]);
  // JPEG is lossy: a flat colour comes back within a few levels.
  EXPECT_NEAR(v[0], 200, 4);
  EXPECT_NEAR(v[64], 100, 4);
  EXPECT_NEAR(v[128 + 63], 50, 4);
}

}  // namespace
}  // namespace qf::data
