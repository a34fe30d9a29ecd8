// Shared argument checks for the bindings. Every entry point of fastattn._core checks its own
// arguments, so that a direct call (bypassing the Python wrappers) can never read or write out
// of bounds, crash, or write into a silent copy:
//   * array arguments are taken as plain Python objects and must BE numpy.ndarray (subclasses
//     included) - never converted: a list converted to a temporary array would die before the
//     kernel reads it, and a converted `out=` would receive the writes instead of the caller;
//   * float32 means native-byte-order 4-byte floats, compared by kind, size and byte order (an
//     unpickled or metadata-carrying float32 dtype is a different object, but the same type);
//   * shapes, strides (whole elements; no zero strides in outputs), writability and overlaps of
//     outputs with inputs are checked before the GIL is released; sizes use overflow-safe
//     arithmetic.
// The Python wrappers in fastattn.ops validate first, with the user-facing messages.
// Errors: py::type_error -> TypeError, py::value_error -> ValueError, each naming the op, the
// argument, what was expected and what was given.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "kernels/activation.h"

namespace fastattn {
namespace bind {

namespace py = pybind11;

std::string shape_str(const py::array& a);
// The Python type name of obj ("list", "numpy.ndarray", ...), for messages.
std::string type_name(const py::handle& obj);

// Whether dt is float32 (kind 'f', 4 bytes, native byte order) / numpy's bool.
bool is_float32(const py::dtype& dt);
// dtype of NumPy kind `kind` ('f', 'i', 'u') and `itemsize` bytes, in native byte order (a
// '>u2' array's bit patterns would be read byte-swapped).
bool has_dtype(const py::dtype& dt, char kind, py::ssize_t itemsize);
bool is_bool(const py::dtype& dt);

// obj itself as a numpy.ndarray (borrowed, never converted), or TypeError
// "<op>: <name> must be a numpy.ndarray, got list".
py::array ndarray(const py::handle& obj, const char* op, const char* name);
// ndarray() of dtype float32, or TypeError "<op>: <name> must be float32, got float64".
py::array float32_array(const py::handle& obj, const char* op, const char* name);

// dtype float32 or TypeError "<op>: <name> must be float32, got <dtype>".
void require_float32(const py::array& a, const char* op, const char* name);
void require_writable(const py::array& a, const char* op, const char* name);
// Every byte of `a` is laid out C-contiguously.
void require_c_contiguous(const py::array& a, const char* op, const char* name);
// Exactly ndim dimensions.
void require_ndim(const py::array& a, py::ssize_t ndim, const char* op, const char* name);
// No axis of more than one element with stride 0 (an output whose elements alias each other).
void require_no_zero_strides(const py::array& a, const char* op, const char* name);

// Whether the memory ranges a and b touch intersect / a and b are the same view (data
// pointer, shape and strides).
bool overlaps(const py::array& a, const py::array& b);
bool same_view(const py::array& a, const py::array& b);
// ValueError unless out and x are disjoint, or (allow_same) exactly the same view.
void require_separate(const py::array& out, const py::array& x, const char* op,
                      const char* out_name, const char* x_name, bool allow_same);

// A float scalar the kernels take as float32: finite in float32 (|v| <= FLT_MAX), and
// >= minimum; ValueError otherwise.
float float32_scalar(double v, const char* op, const char* name, double minimum);

// a * b for a, b >= 0, or -1 when it does not fit int64.
int64_t checked_mul(int64_t a, int64_t b);

// The stride of axis `axis` of a float32 array in whole elements (0 for an axis of extent <= 1:
// never stepped along, so any stride will do); ValueError "op: name strides must be whole
// floats" for a byte stride that is not a multiple of 4.
int64_t element_stride(const py::array& x, py::ssize_t axis, const char* op, const char* name);

// A fused epilogue's `activation` argument (matmul, conv2d): None or a kernel activation name;
// TypeError for a non-str, ValueError for an unknown name, each naming `op`.
Activation epilogue_activation(const py::object& name, const char* op);

// A matmul epilogue's optional `bias`: null for None, else the data of a float32 (n,) array
// with contiguous elements that does not overlap `out` (the caller's own array, borrowed: it
// outlives the call).
const float* epilogue_bias(const py::object& bias, int64_t n, const py::array& out,
                           const char* op);

// A 2-D float32 array whose rows are contiguous (stride of the last axis 4 bytes) and whose
// row stride is any whole number of floats, negative allowed (and, for an output, not zero).
struct RowsView {
  float* data;
  int64_t rows, n, ld;
};
RowsView rows_view(const py::array& a, const char* op, const char* name, bool writable);
// x and out (writable) as row views of the same shape; out is x itself (in place) or apart.
void rows_in_out(const py::array& x, const py::array& out, const char* op, RowsView& xv,
                 RowsView& yv);

// Data pointer of an array already checked with require_writable.
inline float* mutable_floats(const py::array& a) {
  return static_cast<float*>(const_cast<void*>(a.data()));
}

// Same shape or ValueError naming both arrays' shapes.
void require_same_shape(const py::array& a, const py::array& b, const char* op, const char* an,
                        const char* bn);

// A C-contiguous float32 array (the element-wise kernels' input).
void require_contiguous_float32(const py::array& a, const char* op, const char* name);

// `out`: C-contiguous, writable float32 with the shape of `like` (named like_name), and either
// `like` itself (in place) or disjoint from it.
void require_output_like(const py::array& out, const py::array& like, const char* op,
                         const char* like_name);

}  // namespace bind

void bind_runtime(pybind11::module_& m);
void bind_softmax(pybind11::module_& m);
void bind_norm(pybind11::module_& m);
void bind_activation(pybind11::module_& m);
void bind_matmul(pybind11::module_& m);
void bind_matmul_lowp(pybind11::module_& m);
void bind_attention(pybind11::module_& m);
void bind_rope(pybind11::module_& m);
void bind_kv_cache(pybind11::module_& m);
void bind_resample(pybind11::module_& m);
void bind_conv(pybind11::module_& m);

}  // namespace fastattn
