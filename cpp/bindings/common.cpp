#include "bindings/common.h"

#include <cfloat>
#include <cmath>
#include <cstdio>
#include <limits>

namespace fastattn {
namespace bind {

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    s += std::to_string(a.shape(i));
    if (a.ndim() == 1 || i + 1 < a.ndim()) s += a.ndim() == 1 ? "," : ", ";
  }
  return s + ")";
}

std::string type_name(const py::handle& obj) {
  return py::str(py::type::handle_of(obj).attr("__name__"));
}

namespace {
// '=' is numpy's "native"; an explicit '<' / '>' is native when it matches this machine.
bool native_byte_order(char order) {
  const uint16_t one = 1;
  const bool little = *reinterpret_cast<const unsigned char*>(&one) == 1;
  return order == '=' || order == '|' || order == (little ? '<' : '>');
}
std::string prefix(const char* op, const char* name) {
  return std::string(op) + ": " + name;
}
}  // namespace

// By kind, size and byte order, not by identity (dtype::is): numpy hands out distinct but equal
// dtype objects for unpickled arrays and for dtypes carrying metadata.
bool has_dtype(const py::dtype& dt, char kind, py::ssize_t itemsize) {
  return dt.kind() == kind && dt.itemsize() == itemsize && native_byte_order(dt.byteorder());
}

bool is_float32(const py::dtype& dt) { return has_dtype(dt, 'f', 4); }
bool is_bool(const py::dtype& dt) { return dt.kind() == 'b' && dt.itemsize() == 1; }

py::array ndarray(const py::handle& obj, const char* op, const char* name) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(prefix(op, name) + " must be a numpy.ndarray, got " + type_name(obj));
  return py::reinterpret_borrow<py::array>(obj);
}

py::array float32_array(const py::handle& obj, const char* op, const char* name) {
  py::array a = ndarray(obj, op, name);
  require_float32(a, op, name);
  return a;
}

void require_float32(const py::array& a, const char* op, const char* name) {
  if (!is_float32(a.dtype()))
    throw py::type_error(prefix(op, name) + " must be float32 (native byte order), got " +
                         std::string(py::str(a.dtype())));
}

void require_writable(const py::array& a, const char* op, const char* name) {
  if (!a.writeable()) throw py::value_error(prefix(op, name) + " is read-only");
}

void require_c_contiguous(const py::array& a, const char* op, const char* name) {
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(prefix(op, name) + " must be C-contiguous");
}

void require_ndim(const py::array& a, py::ssize_t ndim, const char* op, const char* name) {
  if (a.ndim() != ndim)
    throw py::value_error(prefix(op, name) + " must be " + std::to_string(ndim) + "-D, got " +
                          std::to_string(a.ndim()) + "-D");
}

void require_no_zero_strides(const py::array& a, const char* op, const char* name) {
  if (a.size() == 0) return;  // numpy 2 gives empty arrays zero strides
  for (py::ssize_t i = 0; i < a.ndim(); ++i)
    if (a.shape(i) > 1 && a.strides(i) == 0)
      throw py::value_error(prefix(op, name) + " must not have zero strides (a broadcast view)");
}

namespace {
// [lo, hi): the bytes an array touches (empty arrays: an empty range).
struct Extent {
  const char* lo;
  const char* hi;
};
Extent extent_of(const py::array& x) {
  const char* p = static_cast<const char*>(x.data());
  Extent e{p, p + x.itemsize()};
  for (py::ssize_t d = 0; d < x.ndim(); ++d) {
    if (x.shape(d) == 0) return {p, p};
    const py::ssize_t span = (x.shape(d) - 1) * x.strides(d);
    (span < 0 ? e.lo : e.hi) += span;
  }
  return e;
}
}  // namespace

bool overlaps(const py::array& x, const py::array& y) {
  const Extent a = extent_of(x), b = extent_of(y);
  return a.lo < a.hi && b.lo < b.hi && a.lo < b.hi && b.lo < a.hi;
}

bool same_view(const py::array& a, const py::array& b) {
  if (a.data() != b.data() || a.ndim() != b.ndim()) return false;
  for (py::ssize_t i = 0; i < a.ndim(); ++i)
    if (a.shape(i) != b.shape(i) || (a.shape(i) > 1 && a.strides(i) != b.strides(i)))
      return false;
  return true;
}

void require_separate(const py::array& out, const py::array& x, const char* op,
                      const char* out_name, const char* x_name, bool allow_same) {
  if (!overlaps(out, x) || (allow_same && same_view(out, x))) return;
  throw py::value_error(prefix(op, out_name) + " overlaps " + x_name +
                        (allow_same ? " without being the same view of it" : "") +
                        "; pass a separate array");
}

float float32_scalar(double v, const char* op, const char* name, double minimum) {
  if (!(std::fabs(v) <= static_cast<double>(FLT_MAX)) || v < minimum) {
    char given[40];
    std::snprintf(given, sizeof given, "%.9g", v);
    std::string want = "finite in float32 (|x| <= 3.4028235e+38)";
    if (minimum > -std::numeric_limits<double>::infinity()) {
      char lo[40];
      std::snprintf(lo, sizeof lo, "%g", minimum);
      want += std::string(" and >= ") + lo;
    }
    throw py::value_error(prefix(op, name) + " must be " + want + ", got " + given);
  }
  return static_cast<float>(v);
}

int64_t element_stride(const py::array& x, py::ssize_t axis, const char* op, const char* name) {
  if (x.shape(axis) <= 1) return 0;
  const py::ssize_t s = x.strides(axis);
  if (s % static_cast<py::ssize_t>(sizeof(float)) != 0)
    throw py::value_error(std::string(op) + ": " + name + " strides must be whole floats");
  return s / static_cast<py::ssize_t>(sizeof(float));
}

const float* epilogue_bias(const py::object& bias, int64_t n, const py::array& out,
                           const char* op) {
  if (bias.is_none()) return nullptr;
  const py::array b = float32_array(bias, op, "bias");
  if (b.ndim() != 1 || b.shape(0) != n)
    throw py::value_error(std::string(op) + ": bias has shape " + shape_str(b) +
                          ", expected (" + std::to_string(n) + ",)");
  if (n > 1 && b.strides(0) != static_cast<py::ssize_t>(sizeof(float)))
    throw py::value_error(std::string(op) + ": bias must be contiguous");
  require_separate(out, b, op, "out", "bias", false);
  return static_cast<const float*>(b.data());
}

Activation epilogue_activation(const py::object& name, const char* op) {
  if (name.is_none()) return Activation::none;
  if (!py::isinstance<py::str>(name))
    throw py::type_error(std::string(op) + ": activation must be None or a str, got " +
                         type_name(name));
  const std::string s = py::cast<std::string>(name);
  if (s == "relu") return Activation::relu;
  if (s == "gelu") return Activation::gelu;
  if (s == "gelu_tanh") return Activation::gelu_tanh;
  if (s == "silu") return Activation::silu;
  throw py::value_error(std::string(op) +
                        ": activation must be None, 'relu', 'gelu', 'gelu_tanh' or 'silu', got '" +
                        s + "'");
}

int64_t checked_mul(int64_t a, int64_t b) {
  if (a < 0 || b < 0) return -1;
  if (a != 0 && b > std::numeric_limits<int64_t>::max() / a) return -1;
  return a * b;
}

RowsView rows_view(const py::array& a, const char* op, const char* name, bool writable) {
  require_float32(a, op, name);
  if (writable) require_writable(a, op, name);
  require_ndim(a, 2, op, name);
  const int64_t rows = a.shape(0), n = a.shape(1);
  // mutable_data() would raise for read-only arrays; inputs are only ever read through it.
  float* data = static_cast<float*>(const_cast<void*>(a.data()));
  if (a.size() == 0) return {data, rows, n, n};  // numpy 2 gives empty arrays zero strides
  if (n > 1 && a.strides(1) != static_cast<py::ssize_t>(sizeof(float)))
    throw py::value_error(prefix(op, name) + " rows must be contiguous");
  if (rows > 1 && a.strides(0) % static_cast<py::ssize_t>(sizeof(float)) != 0)
    throw py::value_error(prefix(op, name) + " row stride is not a whole float");
  if (writable && rows > 1 && n > 0 && a.strides(0) == 0)
    throw py::value_error(prefix(op, name) + " must not have zero strides (a broadcast view)");
  const int64_t ld = rows > 1 ? a.strides(0) / static_cast<py::ssize_t>(sizeof(float)) : n;
  return {data, rows, n, ld};
}

void rows_in_out(const py::array& x, const py::array& out, const char* op, RowsView& xv,
                 RowsView& yv) {
  xv = rows_view(x, op, "x", false);
  yv = rows_view(out, op, "out", true);
  require_same_shape(x, out, op, "x", "out");
  require_separate(out, x, op, "out", "x", true);
}

void require_same_shape(const py::array& a, const py::array& b, const char* op, const char* an,
                        const char* bn) {
  bool same = a.ndim() == b.ndim();
  for (py::ssize_t i = 0; same && i < a.ndim(); ++i) same = a.shape(i) == b.shape(i);
  if (!same)
    throw py::value_error(std::string(op) + ": " + bn + " has shape " + shape_str(b) +
                          ", expected " + shape_str(a) + " (the shape of " + an + ")");
}

void require_contiguous_float32(const py::array& a, const char* op, const char* name) {
  require_float32(a, op, name);
  require_c_contiguous(a, op, name);
}

void require_output_like(const py::array& out, const py::array& like, const char* op,
                         const char* like_name) {
  require_contiguous_float32(out, op, "out");
  require_writable(out, op, "out");
  require_same_shape(like, out, op, like_name, "out");
  require_separate(out, like, op, "out", like_name, true);
}

}  // namespace bind
}  // namespace fastattn
