#include "runtime/random_input.h"

#include <cmath>

namespace qf::runtime {

Result<Tensor> random_tensor(DType dtype, const Shape& shape, std::mt19937_64& rng) {
  Tensor t(dtype, shape);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  const bool is_float = dtype_is_float(dtype);
  const bool ok = visit_dtype(dtype, [&]<typename T>() {
    T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      const double u = uniform(rng);
      p[i] = is_float ? from_double<T>(u) : from_double<T>(std::floor((u + 1.0) * 2.0));
    }
  });
  if (!ok) return unsupported("no element type to generate random data for");
  return t;
}

}  // namespace qf::runtime
