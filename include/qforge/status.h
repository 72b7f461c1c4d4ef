// Status and Result: the one error mechanism of qforge.
//
// Every fallible function returns a [[nodiscard]] Status or Result<T>. The status code doubles
// as the CLI's exit code (see docs/ARCHITECTURE.md, "Exit codes"), so a message produced deep in
// the importer reaches the user unchanged and with the right exit status.
#pragma once

#include <fmt/format.h>

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace qf {

enum class StatusCode : int {
  kOk = 0,
  kUsage = 1,         // the command line is wrong
  kInvalidInput = 2,  // model, data or engine file is malformed or does not fit
  kUnsupported = 3,   // valid input that qforge cannot handle (op, precision, hardware)
  kInternal = 4,      // a bug in qforge
};

class [[nodiscard]] Status {
 public:
  Status() = default;  // success
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok_status() { return {}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  int exit_code() const { return static_cast<int>(code_); }

  // Prefixes the message with context ("model.onnx: " or "node 'conv1' (Conv): ").
  Status with_context(std::string_view context) const {
    if (ok()) return *this;
    return Status(code_, fmt::format("{}{}", context, message_));
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename... Args>
Status usage_error(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kUsage, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status invalid_input(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kInvalidInput, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status unsupported(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kUnsupported, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
Status internal_error(fmt::format_string<Args...> f, Args&&... args) {
  return Status(StatusCode::kInternal, fmt::format(f, std::forward<Args>(args)...));
}

// Result<T>: a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : data_(std::move(status)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(data_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(data_);
  }
  T& value() & { return std::get<T>(data_); }
  const T& value() const& { return std::get<T>(data_); }
  T&& value() && { return std::get<T>(std::move(data_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> data_;
};

}  // namespace qf

#define QF_CONCAT_INNER(a, b) a##b
#define QF_CONCAT(a, b) QF_CONCAT_INNER(a, b)

// Returns early from the enclosing function when `expr` (a Status) is not ok.
#define QF_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::qf::Status qf_status_ = (expr);        \
    if (!qf_status_.ok()) return qf_status_; \
  } while (0)

// `QF_ASSIGN_OR_RETURN(auto x, f())` binds the value of a Result or returns its Status.
#define QF_ASSIGN_OR_RETURN(lhs, expr) \
  QF_ASSIGN_OR_RETURN_IMPL(QF_CONCAT(qf_result_, __LINE__), lhs, expr)
#define QF_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
