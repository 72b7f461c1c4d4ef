// Node attributes: a small typed map, filled by the importer and read by shape functions and
// kernels. Getters take the ONNX default so that each op states its defaults where it uses them.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "qforge/tensor.h"

namespace qf::ir {

using AttrValue = std::variant<int64_t, float, std::string, std::vector<int64_t>,
                               std::vector<float>, std::vector<std::string>, Tensor>;

class Attributes {
 public:
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  void set(const std::string& name, AttrValue value) { values_[name] = std::move(value); }
  void erase(const std::string& name) { values_.erase(name); }
  const std::map<std::string, AttrValue>& all() const { return values_; }

  // Each getter returns `fallback` when the attribute is absent. A float attribute read as int
  // (or the reverse) is converted, because exporters are not consistent about it.
  int64_t get_int(const std::string& name, int64_t fallback) const;
  float get_float(const std::string& name, float fallback) const;
  std::string get_string(const std::string& name, const std::string& fallback) const;
  std::vector<int64_t> get_ints(const std::string& name,
                                const std::vector<int64_t>& fallback = {}) const;
  std::vector<float> get_floats(const std::string& name,
                                const std::vector<float>& fallback = {}) const;
  const Tensor* get_tensor(const std::string& name) const;

 private:
  std::map<std::string, AttrValue> values_;
};

}  // namespace qf::ir
