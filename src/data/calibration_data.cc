// open_samples: which source a path is, fitting its arrays to the model inputs, batching.
//
// Rules (see calibration_data.h for the list of sources):
// - Samples per array. With P the input's per-sample element count, an array whose element
//   count is P is one sample, whatever its shape (28x28 and 1x28x28 both fit a 1x28x28 input);
//   otherwise an array of shape [k, ...] whose dims after the first hold P elements is k samples
//   (10000x28x28 is 10000 samples of 1x28x28). Anything else is an error: nested batches like
//   2x5x784 are refused rather than guessed at.
// - Element types. Integer and bool inputs take data of exactly their type. Float inputs
//   (f32, f64, f16, bf16) take any float data, converted (f64 -> f32 rounds to nearest), or u8
//   data scaled to [0, 1] by /255 for every source, .npy included, as data::load_samples does
//   for `qforge eval`, so one file means the same thing to both commands.
// - Float data must be finite; the error gives the first bad sample's index (0-based, counted
//   over the whole source) and the file.
// - Tensor sources (.npy, .pb, .npz, IDX, folders of .npy/.pb) are read and validated
//   completely when opened. Folders of tensor files keep up to kFolderCacheBytes of converted
//   data in memory and re-read the rest per batch. Image folders are checked at open from the
//   image headers (size, and so the preprocessed shape) and decoded per batch, so decoding
//   errors surface from batch(), naming the file and sample.
// - Folders: files directly inside (subfolders are not searched), sorted by file name in byte
//   order (zero-pad numbers: "10.npy" sorts before "9.npy"). Tensor files are `.npy`/`.pb`
//   (lower case, as everywhere in qforge); images `.png`/`.jpg`/`.jpeg` in any case. Other
//   files (labels.txt, README) are ignored; a folder with both kinds is an error.
// - Only .npz archives can feed a model with several inputs (arrays found by input name).
#include "data/calibration_data.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <system_error>

#include <fmt/ranges.h>

#include "data/idx.h"
#include "data/image_folder.h"
#include "data/npz.h"
#include "io/npy.h"
#include "io/tensor_file.h"

namespace qf::data {

namespace {

namespace fs = std::filesystem;

// Converted samples a folder of tensor files keeps in memory; beyond it files are re-read per
// batch, so an evaluation set larger than memory still works.
constexpr size_t kFolderCacheBytes = size_t{1} << 30;

std::string lowercase(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

Shape with_batch(int64_t n, const Shape& sample_shape) {
  Shape shape{n};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  return shape;
}

// ---- fitting one array to one input -------------------------------------------------------

// Where an array came from, for messages.
struct Origin {
  std::string file;          // "calib.npy", "calib.npz: array 'x'"
  int64_t first_sample = 0;  // index of the array's first sample in the whole source
  bool one_of_many = false;  // a file in a folder: shape errors also give its first sample
  std::string where() const {
    return one_of_many ? fmt::format("{} (sample {})", file, first_sample) : file;
  }
};

Result<int64_t> count_samples(const Tensor& raw, const InputSpec& input, const Origin& at) {
  const int64_t per_sample = shape_numel(input.sample_shape);
  if (raw.numel() == per_sample) return 1;
  if (raw.rank() >= 1) {
    const Shape rest(raw.shape().begin() + 1, raw.shape().end());
    if (shape_numel(rest) == per_sample) return raw.dim(0);
  }
  return invalid_input(
      "{}: an array of shape {} ({} elements) is neither one sample of input '{}' (shape {}, "
      "{} elements) nor N samples of it (N x {} elements)",
      at.where(), shape_str(raw.shape()), raw.numel(), input.name, shape_str(input.sample_shape),
      per_sample, per_sample);
}

// Converts `raw` element by element into `dst` (of float type Dst); u8 becomes [0, 1].
template <typename Dst>
void convert_to_float(const Tensor& raw, Dst* dst) {
  const int64_t n = raw.numel();
  if (raw.dtype() == DType::kU8) {
    const uint8_t* src = raw.data<uint8_t>();
    for (int64_t i = 0; i < n; ++i) {
      if constexpr (std::is_same_v<Dst, double>) {
        dst[i] = src[i] / 255.0;
      } else {
        // The same expression as data::load_samples, so both give identical floats.
        dst[i] = from_double<Dst>(static_cast<float>(src[i]) / 255.0f);
      }
    }
    return;
  }
  visit_dtype(raw.dtype(), [&]<typename Src>() {
    const Src* src = raw.data<Src>();
    for (int64_t i = 0; i < n; ++i) dst[i] = from_double<Dst>(to_double(src[i]));
  });
}

// `raw` as `k` samples of the input's dtype and shape.
Result<Tensor> convert(const Tensor& raw, const InputSpec& input, int64_t k, const Origin& at) {
  Shape shape = with_batch(k, input.sample_shape);
  if (raw.dtype() == input.dtype) return raw.reshaped(std::move(shape));
  const bool float_input = dtype_is_float(input.dtype);
  if (!float_input || !(dtype_is_float(raw.dtype()) || raw.dtype() == DType::kU8)) {
    return invalid_input("{}: element type {} does not fit input '{}' ({}): expected {}",
                         at.where(), dtype_tag(raw.dtype()), input.name, dtype_tag(input.dtype),
                         float_input ? "a float type, or u8 (scaled to [0, 1])"
                                     : std::string(dtype_tag(input.dtype)));
  }
  Tensor out(input.dtype, std::move(shape));
  visit_dtype(input.dtype, [&]<typename Dst>() {
    if constexpr (std::is_same_v<Dst, float> || std::is_same_v<Dst, double> ||
                  std::is_same_v<Dst, f16_t> || std::is_same_v<Dst, bf16_t>) {
      convert_to_float(raw, out.data<Dst>());
    }
  });
  return out;
}

// `source` is the element type the data had in the file: a finite f64 beyond the f32 range
// becomes inf only by conversion, which the message then says.
Status check_finite(const Tensor& samples, DType source, const InputSpec& input, const Origin& at) {
  if (!dtype_is_float(samples.dtype()) || samples.numel() == 0) return Status::ok_status();
  const int64_t per_sample = samples.numel() / samples.dim(0);
  int64_t bad = -1;
  double value = 0;
  visit_dtype(samples.dtype(), [&]<typename T>() {
    const T* p = samples.data<T>();
    for (int64_t i = 0; i < samples.numel(); ++i) {
      const double v = to_double(p[i]);
      if (!std::isfinite(v)) {
        bad = i;
        value = v;
        return;
      }
    }
  });
  if (bad < 0) return Status::ok_status();
  const int64_t row = bad / per_sample;
  const std::string converted = source != samples.dtype() && dtype_is_float(source)
                                    ? fmt::format(" after conversion from {} to {}",
                                                  dtype_tag(source), dtype_tag(samples.dtype()))
                                    : std::string();
  const std::string in_file = at.one_of_many && samples.dim(0) > 1
                                  ? fmt::format(" (sample {} of this file)", row)
                                  : std::string();
  return invalid_input("{}: sample {} of input '{}' holds {}{} at element {}{}", at.file,
                       at.first_sample + row, input.name, value, converted, bad % per_sample,
                       in_file);
}

Result<Tensor> fit_array(const Tensor& raw, const InputSpec& input, const Origin& at) {
  QF_ASSIGN_OR_RETURN(int64_t k, count_samples(raw, input, at));
  QF_ASSIGN_OR_RETURN(Tensor samples, convert(raw, input, k, at));
  QF_RETURN_IF_ERROR(check_finite(samples, raw.dtype(), input, at));
  return samples;
}

// Rows [begin, begin + count) of `samples` into `out` starting at row `out_row`.
void copy_rows(const Tensor& samples, int64_t begin, int64_t count, Tensor& out, int64_t out_row) {
  const size_t row_bytes = samples.dim(0) == 0 ? 0 : samples.nbytes() / samples.dim(0);
  std::memcpy(static_cast<std::byte*>(out.raw()) + out_row * row_bytes,
              static_cast<const std::byte*>(samples.raw()) + begin * row_bytes,
              static_cast<size_t>(count) * row_bytes);
}

Status check_range(int64_t begin, int64_t count, int64_t size, const std::string& what) {
  if (begin < 0 || count < 0 || begin + count > size) {
    return internal_error("samples [{}, {}) requested from {}", begin, begin + count, what);
  }
  return Status::ok_status();
}

// ---- sources --------------------------------------------------------------------------------

// Whole arrays in memory, one per input, each N x sample shape: .npy, .pb, IDX, .npz.
class ArraySource final : public SampleSource {
 public:
  ArraySource(std::string path, std::vector<Tensor> arrays)
      : path_(std::move(path)), arrays_(std::move(arrays)) {}
  int64_t size() const override { return arrays_.front().dim(0); }
  Result<std::vector<Tensor>> batch(int64_t begin, int64_t count) override {
    QF_RETURN_IF_ERROR(check_range(begin, count, size(), describe()));
    std::vector<Tensor> out;
    for (const Tensor& a : arrays_) {
      Shape shape = a.shape();
      shape[0] = count;
      Tensor t(a.dtype(), std::move(shape));
      copy_rows(a, begin, count, t, 0);
      out.push_back(std::move(t));
    }
    return out;
  }
  std::string describe() const override { return fmt::format("{} ({} samples)", path_, size()); }

 private:
  std::string path_;
  std::vector<Tensor> arrays_;
};

// A folder of .npy/.pb files, each one sample or a batch of samples.
class TensorFolderSource final : public SampleSource {
 public:
  struct File {
    fs::path path;
    int64_t first = 0;  // index of its first sample in the folder
    int64_t count = 0;
    Tensor cached;  // its converted samples, when they fit the cache budget
  };

  static Result<std::unique_ptr<SampleSource>> open(const fs::path& dir,
                                                    const std::vector<fs::path>& paths,
                                                    const InputSpec& input) {
    auto source = std::unique_ptr<TensorFolderSource>(new TensorFolderSource(dir, input));
    size_t cached_bytes = 0;
    for (const fs::path& path : paths) {
      File file{path, source->total_, 0, {}};
      QF_ASSIGN_OR_RETURN(Tensor samples, source->load(file));
      if (samples.dim(0) == 0) {
        return invalid_input("{} (sample {}): holds no samples (shape {})", path.string(),
                             file.first, shape_str(samples.shape()));
      }
      file.count = samples.dim(0);
      if (cached_bytes + samples.nbytes() <= kFolderCacheBytes) {
        cached_bytes += samples.nbytes();
        file.cached = std::move(samples);
      }
      source->total_ += file.count;
      source->files_.push_back(std::move(file));
    }
    return std::unique_ptr<SampleSource>(std::move(source));
  }

  int64_t size() const override { return total_; }

  Result<std::vector<Tensor>> batch(int64_t begin, int64_t count) override {
    QF_RETURN_IF_ERROR(check_range(begin, count, total_, describe()));
    Tensor out(input_.dtype, with_batch(count, input_.sample_shape));
    // The first file whose samples reach past `begin`.
    auto it = std::upper_bound(files_.begin(), files_.end(), begin,
                               [](int64_t b, const File& f) { return b < f.first + f.count; });
    for (int64_t done = 0; done < count; ++it) {
      const File& file = *it;
      Tensor samples = file.cached;
      if (!samples.defined()) {
        QF_ASSIGN_OR_RETURN(samples, load(file));
        if (samples.dim(0) != file.count) {
          return invalid_input("{}: changed since it was opened ({} samples, now {})",
                               file.path.string(), file.count, samples.dim(0));
        }
      }
      const int64_t from = begin + done - file.first;
      const int64_t n = std::min(count - done, file.count - from);
      copy_rows(samples, from, n, out, done);
      done += n;
    }
    std::vector<Tensor> result;
    result.push_back(std::move(out));
    return result;
  }

  std::string describe() const override {
    return fmt::format("{} ({} samples in {} files)", dir_, total_, files_.size());
  }

 private:
  TensorFolderSource(const fs::path& dir, InputSpec input)
      : dir_(dir.string()), input_(std::move(input)) {}

  // A .pb file's stored tensor name is not checked: with one input there is nothing to pick.
  Result<Tensor> load(const File& file) const {
    QF_ASSIGN_OR_RETURN(io::LoadedTensor loaded, io::load_tensor_file(file.path));
    return fit_array(loaded.tensor, input_, Origin{file.path.string(), file.first, true});
  }

  std::string dir_;
  InputSpec input_;
  std::vector<File> files_;
  int64_t total_ = 0;
};

// Drops size-1 dims: a grey image's 1x28x28 (NCHW) and 28x28x1 (NHWC) are the same memory
// and fit a 28x28 or 1x28x28 input alike, while 3x224x224 never fits 224x224x3.
Shape squeeze_ones(const Shape& shape) {
  Shape out;
  for (int64_t d : shape) {
    if (d != 1) out.push_back(d);
  }
  return out;
}

// A folder of PNG/JPEG images (or one image file), decoded per batch.
class ImageSource final : public SampleSource {
 public:
  static Result<std::unique_ptr<SampleSource>> open(const fs::path& path,
                                                    std::vector<fs::path> images,
                                                    const InputSpec& input,
                                                    const ImagePreprocess& pre) {
    if (!dtype_is_float(input.dtype)) {
      return unsupported("{}: images can only feed float inputs; input '{}' is {}", path.string(),
                         input.name, dtype_tag(input.dtype));
    }
    QF_RETURN_IF_ERROR(validate_image_preprocess(pre));
    const Shape wanted = squeeze_ones(input.sample_shape);
    for (const fs::path& image : images) {
      QF_ASSIGN_OR_RETURN(ImageSize size, read_image_size(image));
      QF_ASSIGN_OR_RETURN(Shape shape, preprocessed_shape(size, pre, image.string()));
      if (squeeze_ones(shape) == wanted) continue;
      std::string hint = "set resize=, crop=, order= or layout= of the preprocessing to match";
      ImagePreprocess other = pre;
      other.nhwc = !pre.nhwc;
      Result<Shape> other_shape = preprocessed_shape(size, other, image.string());
      if (other_shape.ok() && squeeze_ones(*other_shape) == wanted) {
        hint = fmt::format("the model wants layout={}", other.nhwc ? "nhwc" : "nchw");
      }
      return invalid_input(
          "{}: preprocessing '{}' makes this {}x{} (width x height) image a {} sample, but "
          "input '{}' wants {}: {}",
          image.string(), image_preprocess_str(pre), size.width, size.height, shape_str(shape),
          input.name, shape_str(input.sample_shape), hint);
    }
    return std::unique_ptr<SampleSource>(new ImageSource(path, std::move(images), input, pre));
  }

  int64_t size() const override { return static_cast<int64_t>(images_.size()); }

  Result<std::vector<Tensor>> batch(int64_t begin, int64_t count) override {
    QF_RETURN_IF_ERROR(check_range(begin, count, size(), describe()));
    Tensor out(input_.dtype, with_batch(count, input_.sample_shape));
    for (int64_t i = 0; i < count; ++i) {
      const int64_t index = begin + i;
      const fs::path& path = images_[static_cast<size_t>(index)];
      const Origin at{path.string(), index, true};
      Result<Tensor> image = load_image(path, pre_);
      if (!image.ok()) {
        return image.status().with_context(fmt::format("sample {}: ", index));
      }
      QF_ASSIGN_OR_RETURN(int64_t k, count_samples(*image, input_, at));
      if (k != 1) {
        return invalid_input("{}: the image changed since the folder was opened", at.where());
      }
      QF_ASSIGN_OR_RETURN(Tensor sample, convert(*image, input_, 1, at));
      QF_RETURN_IF_ERROR(check_finite(sample, image->dtype(), input_, at));
      copy_rows(sample, 0, 1, out, i);
    }
    std::vector<Tensor> result;
    result.push_back(std::move(out));
    return result;
  }

  std::string describe() const override {
    return fmt::format("{} ({} image{})", path_, images_.size(), images_.size() == 1 ? "" : "s");
  }

 private:
  ImageSource(const fs::path& path, std::vector<fs::path> images, InputSpec input,
              ImagePreprocess pre)
      : path_(path.string()), images_(std::move(images)), input_(std::move(input)), pre_(pre) {}

  std::string path_;
  std::vector<fs::path> images_;
  InputSpec input_;
  ImagePreprocess pre_;
};

// ---- opening --------------------------------------------------------------------------------

std::string input_names(const std::vector<InputSpec>& inputs) {
  std::vector<std::string> quoted;
  for (const InputSpec& in : inputs) quoted.push_back(fmt::format("'{}'", in.name));
  return fmt::format("{}", fmt::join(quoted, ", "));
}

Status only_one_input(const fs::path& path, const std::vector<InputSpec>& inputs) {
  if (inputs.size() == 1) return Status::ok_status();
  std::vector<std::string> keys;
  for (const InputSpec& in : inputs) keys.push_back(fmt::format("{}=...", in.name));
  return unsupported(
      "{}: the model has {} inputs ({}), and only a .npz archive can feed several inputs: "
      "save one array per input, named after it, with np.savez(FILE, {})",
      path.string(), inputs.size(), input_names(inputs), fmt::join(keys, ", "));
}

Result<std::unique_ptr<SampleSource>> single_array(const fs::path& path, const Tensor& raw,
                                                   const InputSpec& input) {
  QF_ASSIGN_OR_RETURN(Tensor samples, fit_array(raw, input, Origin{path.string()}));
  if (samples.dim(0) == 0) {
    return invalid_input("{}: holds no samples (shape {})", path.string(), shape_str(raw.shape()));
  }
  std::vector<Tensor> arrays;
  arrays.push_back(std::move(samples));
  return std::unique_ptr<SampleSource>(new ArraySource(path.string(), std::move(arrays)));
}

// Characters outside [A-Za-z0-9._-] become '_', as `qforge run` names output files, so an
// input "input:0" can be saved as np.savez(FILE, input_0=...).
std::string sanitized(std::string_view name) {
  std::string out(name);
  for (char& c : out) {
    const bool keep =
        std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    if (!keep) c = '_';
  }
  return out;
}

Result<std::unique_ptr<SampleSource>> open_npz(const fs::path& path,
                                               const std::vector<InputSpec>& inputs) {
  QF_ASSIGN_OR_RETURN(NpzArchive archive, NpzArchive::open(path));
  if (archive.names().empty()) return invalid_input("{}: holds no .npy arrays", path.string());
  std::vector<Tensor> arrays;
  std::vector<std::string> used;
  for (const InputSpec& input : inputs) {
    std::string name = input.name;
    if (!archive.contains(name)) name = sanitized(input.name);
    // np.savez(FILE, x) stores an unnamed array as "arr_0": fine when there is nothing to choose.
    if (!archive.contains(name) && inputs.size() == 1 && archive.names().size() == 1) {
      name = archive.names()[0];
    }
    if (!archive.contains(name)) {
      return invalid_input(
          "{}: no array for input '{}' (the archive holds {}); name each array after its "
          "input: np.savez(FILE, {}=...)",
          path.string(), input.name, fmt::join(archive.names(), ", "), sanitized(input.name));
    }
    QF_ASSIGN_OR_RETURN(Tensor raw, archive.read(name));
    const Origin at{fmt::format("{}: array '{}'", path.string(), name)};
    QF_ASSIGN_OR_RETURN(Tensor samples, fit_array(raw, input, at));
    if (!arrays.empty() && samples.dim(0) != arrays.front().dim(0)) {
      return invalid_input(
          "{}: array '{}' holds {} samples but array '{}' holds {}; every input needs the same "
          "number",
          path.string(), used.front(), arrays.front().dim(0), name, samples.dim(0));
    }
    arrays.push_back(std::move(samples));
    used.push_back(name);
  }
  if (arrays.front().dim(0) == 0) {
    return invalid_input("{}: array '{}' holds no samples", path.string(), used.front());
  }
  return std::unique_ptr<SampleSource>(new ArraySource(path.string(), std::move(arrays)));
}

bool is_idx_name(const std::string& lower_name) {
  return lower_name.ends_with(".idx") || lower_name.ends_with(".idx.gz") ||
         lower_name.ends_with("-ubyte") || lower_name.ends_with("-ubyte.gz");
}

Result<std::unique_ptr<SampleSource>> open_folder(const fs::path& dir,
                                                  const std::vector<InputSpec>& inputs,
                                                  const ImagePreprocess& pre) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return invalid_input("{}: cannot list the folder: {}", dir.string(), ec.message());
  std::vector<fs::path> tensors;
  std::vector<fs::path> images;
  int subfolders = 0;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const fs::path& path = it->path();
    // Entries that cannot be inspected (a dangling link) are skipped like other non-samples.
    std::error_code entry_ec;
    if (it->is_directory(entry_ec)) {
      ++subfolders;
    } else if (it->is_regular_file(entry_ec)) {
      const std::string ext = path.extension().string();
      if (ext == ".npy" || ext == ".pb") {
        tensors.push_back(path);
      } else if (is_image_file(path)) {
        images.push_back(path);
      }
    }
  }
  if (ec) return invalid_input("{}: cannot list the folder: {}", dir.string(), ec.message());
  const auto by_name = [](const fs::path& a, const fs::path& b) {
    return a.filename().string() < b.filename().string();
  };
  std::sort(tensors.begin(), tensors.end(), by_name);
  std::sort(images.begin(), images.end(), by_name);
  if (!tensors.empty() && !images.empty()) {
    return invalid_input(
        "{}: holds both tensor files ({} .npy/.pb, e.g. {}) and images ({}, e.g. {}); put each "
        "kind in a folder of its own",
        dir.string(), tensors.size(), tensors[0].filename().string(), images.size(),
        images[0].filename().string());
  }
  if (tensors.empty() && images.empty()) {
    return invalid_input(
        "{}: no samples: expected .npy/.pb files or .png/.jpg/.jpeg images{}", dir.string(),
        subfolders > 0 ? " directly in the folder (subfolders are not searched)" : "");
  }
  QF_RETURN_IF_ERROR(only_one_input(dir, inputs));
  if (!tensors.empty()) return TensorFolderSource::open(dir, tensors, inputs[0]);
  return ImageSource::open(dir, std::move(images), inputs[0], pre);
}

Status check_inputs(const std::vector<InputSpec>& inputs) {
  if (inputs.empty()) return invalid_input("the model has no inputs to feed samples to");
  for (const InputSpec& in : inputs) {
    for (int64_t d : in.sample_shape) {
      if (d <= 0) {
        return unsupported(
            "input '{}': sample shape {} has unknown or empty dimensions; samples need a fixed "
            "shape",
            in.name, shape_str(in.sample_shape));
      }
    }
    if (in.dtype == DType::kUndefined) {
      return internal_error("input '{}' has no element type", in.name);
    }
  }
  return Status::ok_status();
}

}  // namespace

Result<std::unique_ptr<SampleSource>> open_samples(const std::filesystem::path& path,
                                                   const std::vector<InputSpec>& inputs,
                                                   const ImagePreprocess& preprocess) {
  QF_RETURN_IF_ERROR(check_inputs(inputs));
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status)) {
    return invalid_input("{}: no such file or folder", path.string());
  }
  if (fs::is_directory(status)) return open_folder(path, inputs, preprocess);

  const std::string name = lowercase(path.filename().string());
  const std::string ext = path.extension().string();
  if (lowercase(ext) == ".npz") return open_npz(path, inputs);
  // A .pb file's stored tensor name is not checked: with one input there is nothing to pick.
  if (ext == ".npy" || ext == ".pb") {
    QF_RETURN_IF_ERROR(only_one_input(path, inputs));
    QF_ASSIGN_OR_RETURN(io::LoadedTensor loaded, io::load_tensor_file(path));
    return single_array(path, loaded.tensor, inputs[0]);
  }
  if (is_idx_name(name)) {
    QF_RETURN_IF_ERROR(only_one_input(path, inputs));
    QF_ASSIGN_OR_RETURN(Tensor raw, read_idx(path));
    return single_array(path, raw, inputs[0]);
  }
  if (is_image_file(path)) {
    QF_RETURN_IF_ERROR(only_one_input(path, inputs));
    return ImageSource::open(path, {path}, inputs[0], preprocess);
  }
  return unsupported(
      "{}: not a known sample source: expected .npy, .pb, .npz, IDX (.idx, .idx.gz, *-ubyte, "
      "*-ubyte.gz), a .png/.jpg image, or a folder of .npy/.pb files or images",
      path.string());
}

}  // namespace qf::data
