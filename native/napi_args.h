// Argument parsing and validation for the N-API bindings. Every binding checks argument
// count and types and that each array is large enough for the sizes it was given, and
// throws a JS Error naming the kernel and the argument otherwise: the kernels themselves
// trust their inputs, so nothing past this point may read or write out of bounds.
#pragma once

#include <node_api.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels.h"

namespace tf {

// A validation failure; the binding wrapper turns it into a thrown JS Error.
struct ArgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A typed array's element pointer and length (elements, not bytes).
template <typename T>
struct View {
  T* data = nullptr;
  size_t length = 0;
};

class Args {
 public:
  static constexpr size_t kMaxArgs = 24;

  Args(napi_env env, napi_callback_info info, const char* kernel, size_t expected)
      : env_(env), kernel_(kernel) {
    argc_ = kMaxArgs;
    if (napi_get_cb_info(env, info, &argc_, argv_, nullptr, nullptr) != napi_ok) {
      fail("cannot read arguments");
    }
    if (argc_ != expected) {
      fail("expected " + std::to_string(expected) + " arguments, got " + std::to_string(argc_));
    }
  }

  napi_env env() const { return env_; }

  [[noreturn]] void fail(const std::string& what) const {
    throw ArgError(std::string("native ") + kernel_ + ": " + what);
  }
  [[noreturn]] void fail_arg(const char* name, const std::string& what) const {
    fail("argument '" + std::string(name) + "' " + what);
  }

  double number(size_t i, const char* name) const {
    double v;
    if (napi_get_value_double(env_, argv_[i], &v) != napi_ok) fail_arg(name, "must be a number");
    return v;
  }

  // An integer in [lo, hi].
  int64_t integer(size_t i, const char* name, int64_t lo = 0, int64_t hi = INT32_MAX) const {
    const double v = number(i, name);
    if (!(v == std::floor(v)) || v < double(lo) || v > double(hi)) {
      fail_arg(name, "must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                         "], got " + std::to_string(v));
    }
    return int64_t(v);
  }

  bool boolean(size_t i, const char* name) const {
    bool v;
    if (napi_get_value_bool(env_, argv_[i], &v) != napi_ok) fail_arg(name, "must be a boolean");
    return v;
  }

  bool is_null(size_t i) const {
    napi_valuetype t;
    napi_typeof(env_, argv_[i], &t);
    return t == napi_null || t == napi_undefined;
  }

  View<float> f32(size_t i, const char* name) const { return typed<float>(i, name, napi_float32_array, "Float32Array"); }
  View<int32_t> i32(size_t i, const char* name) const { return typed<int32_t>(i, name, napi_int32_array, "Int32Array"); }
  View<uint8_t> u8(size_t i, const char* name) const { return typed<uint8_t>(i, name, napi_uint8_array, "Uint8Array"); }
  View<double> f64(size_t i, const char* name) const { return typed<double>(i, name, napi_float64_array, "Float64Array"); }

  // Null/undefined gives an empty view with data == nullptr.
  View<float> f32_or_null(size_t i, const char* name) const { return is_null(i) ? View<float>{} : f32(i, name); }
  View<uint8_t> u8_or_null(size_t i, const char* name) const { return is_null(i) ? View<uint8_t>{} : u8(i, name); }

  // Throws unless the array holds at least `needed` elements.
  template <typename T>
  void need(const View<T>& v, uint64_t needed, const char* name) const {
    if (v.length < needed) {
      fail_arg(name, "is too small: needs " + std::to_string(needed) + " elements, has " +
                         std::to_string(v.length));
    }
  }

  // a·b, throwing on 64-bit overflow (sizes come from user code).
  uint64_t mul(uint64_t a, uint64_t b) const {
    uint64_t r;
    if (__builtin_mul_overflow(a, b, &r)) fail("sizes overflow");
    return r;
  }
  uint64_t mul(uint64_t a, uint64_t b, uint64_t c) const { return mul(mul(a, b), c); }
  uint64_t mul(uint64_t a, uint64_t b, uint64_t c, uint64_t d) const { return mul(mul(a, b, c), d); }

  // Reads a strided space packed by native.ts: ranks and strides as doubles (see there).
  // `nops` operands' stride lists follow the shape; `ops` names them for messages.
  void strided_space(const View<double>& packed, size_t at, int nops, const char* const* ops,
                     StridedSpace* s) const;

  // Checks that every position operand `o` of `s` visits lies in [0, length).
  void check_span(const StridedSpace& s, int o, size_t length, const char* name) const;

 private:
  template <typename T>
  View<T> typed(size_t i, const char* name, napi_typedarray_type want, const char* want_name) const {
    bool is_ta = false;
    napi_is_typedarray(env_, argv_[i], &is_ta);
    if (!is_ta) fail_arg(name, std::string("must be a ") + want_name);
    napi_typedarray_type type;
    size_t length;
    void* data;
    // N-API's `data` already points at the view's first element (byte offset applied), so
    // subarray views work without adding the offset again.
    if (napi_get_typedarray_info(env_, argv_[i], &type, &length, &data, nullptr, nullptr) != napi_ok)
      fail_arg(name, "cannot be read");
    if (type != want) fail_arg(name, std::string("must be a ") + want_name);
    if (data == nullptr) length = 0;  // detached buffer
    return View<T>{static_cast<T*>(data), length};
  }

  napi_env env_;
  const char* kernel_;
  size_t argc_;
  napi_value argv_[kMaxArgs];
};

// Registers fn as exports[name].
void export_function(napi_env env, napi_value exports, const char* name, napi_callback fn);

// Defines a binding `napi_value name(napi_env, napi_callback_info)` whose body may throw
// ArgError; the error becomes a JS exception.
#define TF_BINDING(name)                                                      \
  static napi_value name##_impl(napi_env env, napi_callback_info info);       \
  static napi_value name(napi_env env, napi_callback_info info) {             \
    try {                                                                     \
      return name##_impl(env, info);                                          \
    } catch (const std::exception& e) {                                       \
      napi_throw_error(env, nullptr, e.what());                               \
      return nullptr;                                                         \
    }                                                                         \
  }                                                                           \
  static napi_value name##_impl(napi_env env, napi_callback_info info)

}  // namespace tf
