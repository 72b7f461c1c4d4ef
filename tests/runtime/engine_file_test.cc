#include "runtime/engine_file.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>

#include "core/file_util.h"
#include "onnx/importer.h"

namespace qf::runtime {
namespace {

std::filesystem::path fashion_mnist_model() {
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "models" /
         "fashion_mnist_cnn.onnx";
}

Tensor random_input(Shape shape, uint32_t seed) {
  Tensor t(DType::kF32, std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (float& v : t.span<float>()) v = u(rng);
  return t;
}

void put_le(std::string& bytes, size_t offset, uint64_t v, int n) {
  for (int i = 0; i < n; ++i)
    bytes[offset + static_cast<size_t>(i)] = static_cast<char>(v >> (8 * i));
}

uint64_t get_le(const std::string& bytes, size_t offset, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) {
    v |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[offset + static_cast<size_t>(i)]))
         << (8 * i);
  }
  return v;
}

// What a tool editing the file would do: fix the body size and the CRC after a change.
void reseal(std::string& bytes) {
  put_le(bytes, 16, bytes.size() - 24, 8);
  const uLong crc = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(bytes.data() + 16),
                          static_cast<uInt>(bytes.size() - 16));
  put_le(bytes, 12, crc, 4);
}

// Offset of the length prefix of the header's `index`-th string (0 backend, 1 precision, 2 isa).
size_t header_string_offset(const std::string& bytes, int index) {
  size_t offset = 24;
  for (int i = 0; i < index; ++i) offset += 4 + get_le(bytes, offset, 4);
  return offset;
}

class EngineFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const Backend* reference = find_backend("reference");
    ASSERT_NE(reference, nullptr);
    auto bytes = read_file_bytes(fashion_mnist_model());
    ASSERT_TRUE(bytes.ok()) << bytes.status().message();
    auto model = onnx_io::import_model_bytes(*bytes, fashion_mnist_model());
    ASSERT_TRUE(model.ok()) << model.status().message();
    auto engine = reference->build(std::move(model->graph), BuildOptions{});
    ASSERT_TRUE(engine.ok()) << engine.status().message();
    engine_ = std::move(engine).value();

    header_ = header_for(*engine_);
    header_.producer = "qforge test";
    header_.model_name = "fashion_mnist_cnn.onnx";
    header_.model_size = bytes->size();
    header_.model_hash = fnv1a64(*bytes);
    header_.threads = 3;
    header_.options = {{"shape:input", "2x1x28x28"}, {"note", ""}};
    auto file = serialize_engine(header_, engine_->graph());
    ASSERT_TRUE(file.ok()) << file.status().message();
    file_ = std::move(file).value();
  }

  Status load_error(const std::string& bytes) {
    auto loaded = parse_engine_file(bytes, "m.engine");
    if (!loaded.ok()) return loaded.status();
    auto engine = build_loaded_engine(std::move(loaded).value(), "m.engine");
    return engine.ok() ? Status() : engine.status();
  }

  std::unique_ptr<Engine> engine_;
  EngineFileHeader header_;
  std::string file_;
};

TEST_F(EngineFileTest, RoundTripRunsLikeTheDirectEngine) {
  const auto dir = std::filesystem::temp_directory_path() / "qforge_engine_file_test";
  std::filesystem::create_directories(dir);
  const auto path = dir / "m.engine";
  ASSERT_TRUE(write_file_atomic(path, file_).ok());
  auto loaded = load_engine_file(path);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();

  const EngineFileHeader& h = loaded->header;
  EXPECT_EQ(h.backend, "reference");
  EXPECT_EQ(h.precision, Precision::kFP32);
  EXPECT_EQ(h.isa, engine_->info().isa);
  EXPECT_EQ(h.compute, engine_->info().compute);
  EXPECT_EQ(h.producer, "qforge test");
  EXPECT_EQ(h.model_name, "fashion_mnist_cnn.onnx");
  EXPECT_EQ(h.model_size, header_.model_size);
  EXPECT_EQ(h.model_hash, header_.model_hash);
  EXPECT_EQ(h.threads, 3);
  EXPECT_EQ(h.options, header_.options);

  auto engine = build_loaded_engine(std::move(loaded).value(), path);
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  EXPECT_EQ((*engine)->info().kernels.size(), engine_->info().kernels.size());
  const std::vector<Tensor> in = {random_input({2, 1, 28, 28}, 11)};
  auto want = engine_->run(in);
  auto got = (*engine)->run(in);
  ASSERT_TRUE(want.ok() && got.ok());
  ASSERT_EQ(want->size(), 1u);
  ASSERT_EQ(got->size(), 1u);
  ASSERT_EQ((*want)[0].shape(), (*got)[0].shape());
  EXPECT_EQ(std::memcmp((*want)[0].raw(), (*got)[0].raw(), (*want)[0].nbytes()), 0);
}

TEST_F(EngineFileTest, LayoutMatchesTheDocumentedTable) {
  EXPECT_EQ(file_.substr(0, 8), "QFENGINE");
  EXPECT_EQ(get_le(file_, 8, 4), kEngineFormatVersion);
  EXPECT_EQ(get_le(file_, 16, 8), file_.size() - 24);
  const size_t backend = header_string_offset(file_, 0);
  EXPECT_EQ(file_.substr(backend + 4, get_le(file_, backend, 4)), "reference");
  const size_t isa = header_string_offset(file_, 2);
  EXPECT_EQ(file_.substr(isa + 4, get_le(file_, isa, 4)), engine_->info().isa);
}

TEST_F(EngineFileTest, FlippedPayloadByteIsCorrupted) {
  std::string bytes = file_;
  bytes[bytes.size() - 100] ^= 0x01;
  const Status s = load_error(bytes);
  EXPECT_EQ(s.code(), StatusCode::kInvalidInput);
  EXPECT_NE(s.message().find("m.engine: engine file is corrupted (checksum mismatch"),
            std::string::npos)
      << s.message();
  EXPECT_EQ(s.message().find('\n'), std::string::npos);
}

TEST_F(EngineFileTest, FlippedHeaderByteIsCorrupted) {
  std::string bytes = file_;
  bytes[header_string_offset(file_, 0) + 4] ^= 0x20;  // "reference" -> "Reference"
  const Status s = load_error(bytes);
  EXPECT_EQ(s.code(), StatusCode::kInvalidInput);
  EXPECT_NE(s.message().find("corrupted"), std::string::npos) << s.message();
}

TEST_F(EngineFileTest, TrailingBytesAreCorrupted) {
  const Status s = load_error(file_ + "junk");
  EXPECT_EQ(s.code(), StatusCode::kInvalidInput);
  EXPECT_NE(s.message().find("corrupted"), std::string::npos) << s.message();
}

TEST_F(EngineFileTest, TruncatedFilesAreRefused) {
  for (size_t size : {size_t{4}, size_t{12}, size_t{23}, size_t{24}, size_t{200}, file_.size() / 2,
                      file_.size() - 1}) {
    const Status s = load_error(file_.substr(0, size));
    EXPECT_EQ(s.code(), StatusCode::kInvalidInput) << size;
    EXPECT_NE(s.message().find("m.engine: truncated engine file"), std::string::npos)
        << size << ": " << s.message();
  }
}

TEST_F(EngineFileTest, BadMagicIsRefused) {
  std::string bytes = file_;
  bytes[0] = 'X';
  Status s = load_error(bytes);
  EXPECT_EQ(s.code(), StatusCode::kInvalidInput);
  EXPECT_EQ(s.message(), "m.engine: not a qforge engine file (bad magic)");
  s = load_error("");
  EXPECT_EQ(s.message(), "m.engine: not a qforge engine file (bad magic)");
  EXPECT_FALSE(is_engine_file(bytes));
  EXPECT_TRUE(is_engine_file(file_));
}

TEST_F(EngineFileTest, OtherFormatVersionsAreRefused) {
  std::string bytes = file_;
  put_le(bytes, 8, kEngineFormatVersion + 1, 4);
  Status s = load_error(bytes);
  EXPECT_EQ(s.code(), StatusCode::kInvalidInput);
  EXPECT_NE(s.message().find("m.engine: engine file format version 2 was written by a newer qforge "
                             "(this one reads version 1)"),
            std::string::npos)
      << s.message();
  put_le(bytes, 8, 0, 4);
  s = load_error(bytes);
  EXPECT_NE(s.message().find("written by an older qforge"), std::string::npos) << s.message();
}

TEST_F(EngineFileTest, OtherIsaIsRefused) {
  std::string bytes = file_;
  const size_t isa = header_string_offset(bytes, 2);
  const std::string other = "avx512_core_amx";
  bytes.replace(isa, 4 + get_le(bytes, isa, 4), std::string(4, '\0') + other);
  put_le(bytes, isa, other.size(), 4);
  reseal(bytes);
  auto loaded = parse_engine_file(bytes, "m.engine");
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();  // the container itself is sound
  EXPECT_EQ(loaded->header.isa, other);
  const Status s = load_error(bytes);
  EXPECT_EQ(s.code(), StatusCode::kInvalidInput);
  EXPECT_EQ(s.message(),
            "m.engine: the engine was built for ISA 'avx512_core_amx' but the reference backend "
            "uses 'portable C++' on this machine; rebuild it here with `qforge build`");
}

// A header edited into nonsense and resealed (a buggy writer, not a random flip): every field's
// length is checked before it is read, so the file is refused, never read out of bounds.
TEST_F(EngineFileTest, ResealedHeaderGarbageIsRefusedSafely) {
  const size_t options = header_string_offset(file_, 6) + 20;  // after sizes, hash, threads
  for (size_t offset = 24; offset < options + 40; ++offset) {
    std::string bytes = file_;
    bytes[offset] = static_cast<char>(0xff);
    reseal(bytes);
    auto loaded = parse_engine_file(bytes, "m.engine");
    if (loaded.ok()) continue;  // e.g. a changed hash byte or producer character
    EXPECT_EQ(loaded.status().code(), StatusCode::kInvalidInput) << offset;
    EXPECT_EQ(loaded.status().message().find('\n'), std::string::npos) << offset;
  }
}

TEST_F(EngineFileTest, UnknownBackendIsUnsupported) {
  EngineFileHeader h = header_;
  h.backend = "tpu";
  auto bytes = serialize_engine(h, engine_->graph());
  ASSERT_TRUE(bytes.ok());
  const Status s = load_error(*bytes);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("built for the 'tpu' backend, which this qforge does not have"),
            std::string::npos)
      << s.message();
}

TEST_F(EngineFileTest, UnsupportedPrecisionIsRefusedBeforeBuilding) {
  EngineFileHeader h = header_;
  h.precision = Precision::kINT8;
  auto bytes = serialize_engine(h, engine_->graph());
  ASSERT_TRUE(bytes.ok());
  const Status s = load_error(*bytes);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("the reference backend cannot run int8"), std::string::npos)
      << s.message();
}

// Every backend compiled in: the saved graph rebuilds into the same kernels (its passes are
// idempotent on their own output) and runs to the same outputs.
TEST(EngineFileBackendsTest, EveryBackendRoundTrips) {
  int tested = 0;
  for (const Backend* backend : all_backends()) {
    if (!backend->supports(Precision::kFP32)) continue;
    ++tested;
    SCOPED_TRACE(std::string(backend->name()));
    auto model = onnx_io::load_model(fashion_mnist_model());
    ASSERT_TRUE(model.ok()) << model.status().message();
    auto direct = backend->build(std::move(model->graph), BuildOptions{});
    ASSERT_TRUE(direct.ok()) << direct.status().message();
    auto bytes = serialize_engine(header_for(**direct), (*direct)->graph());
    ASSERT_TRUE(bytes.ok()) << bytes.status().message();
    auto loaded = parse_engine_file(*bytes, "m.engine");
    ASSERT_TRUE(loaded.ok()) << loaded.status().message();
    auto engine = build_loaded_engine(std::move(loaded).value(), "m.engine");
    ASSERT_TRUE(engine.ok()) << engine.status().message();

    std::vector<std::string> want_kernels, got_kernels;
    for (const KernelInfo& k : (*direct)->info().kernels) want_kernels.push_back(k.impl);
    for (const KernelInfo& k : (*engine)->info().kernels) got_kernels.push_back(k.impl);
    EXPECT_EQ(got_kernels, want_kernels);

    const std::vector<Tensor> in = {random_input({3, 1, 28, 28}, 5)};
    auto want = (*direct)->run(in);
    auto got = (*engine)->run(in);
    ASSERT_TRUE(want.ok()) << want.status().message();
    ASSERT_TRUE(got.ok()) << got.status().message();
    ASSERT_EQ((*got)[0].shape(), (*want)[0].shape());
    const float* w = (*want)[0].data<float>();
    const float* g = (*got)[0].data<float>();
    for (int64_t i = 0; i < (*want)[0].numel(); ++i) {
      EXPECT_NEAR(g[i], w[i], 1e-5f * (1.0f + std::fabs(w[i]))) << i;
    }
  }
  EXPECT_GE(tested, 1);  // the reference backend at least
}

// Tactics (EngineInfo::tactics of a backend that times them) travel as "tactic:" options and come
// back as BuildOptions::tactics, with the scales and the rest, so that the rebuild takes them.
TEST(EngineFileTacticsTest, TacticsRoundTripThroughTheHeader) {
  auto model = onnx_io::load_model(fashion_mnist_model());
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto engine = find_backend("reference")->build(std::move(model->graph), BuildOptions{});
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  EngineFileHeader h = header_for(**engine);
  const std::map<std::string, std::string> tactics = {
      {"conv f16 x[1,8,28,28] w[16,8,3,3] pad1x1 stride1x1 dil1x1 group1 Relu bias",
       "cudnn algo 1 math 1"},
      {"conv f16 x[1,16,14,14] w[32,16,3,3] pad1x1 stride1x1 dil1x1 group1 Relu bias",
       "cudnn algo 0 math 1"}};
  for (const auto& [signature, tactic] : tactics) {
    h.options.emplace_back(std::string(kTacticKeyPrefix) + signature, tactic);
  }
  h.options.emplace_back("int8_scale:x", "3c000000");
  auto bytes = serialize_engine(h, (*engine)->graph());
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  auto loaded = parse_engine_file(*bytes, "t.engine");
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  auto options = build_options_from(loaded->header, "t.engine");
  ASSERT_TRUE(options.ok()) << options.status().message();
  EXPECT_EQ(options->tactics, tactics);
  EXPECT_EQ(options->activation_scales.at("x"), 0.0078125f);
  EXPECT_TRUE((*engine)->info().tactics.empty());  // the reference backend times nothing
}

TEST(EngineFileHashTest, Fnv1a64KnownValues) {
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ULL);
}

}  // namespace
}  // namespace qf::runtime
