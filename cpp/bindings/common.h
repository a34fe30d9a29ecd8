// Shared argument checks for the bindings. Bindings take plain py::array (never converting):
// a silent conversion would turn an `out=` into a copy that receives the writes. The Python
// wrappers in fastattn.ops validate first, with the user-facing messages; these checks are the
// second line, so that even a direct call into fastattn._core can never read or write out of
// bounds. Errors: py::type_error -> TypeError, py::value_error -> ValueError.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

namespace fastattn {
namespace bind {

namespace py = pybind11;

std::string shape_str(const py::array& a);

// dtype float32 or TypeError "<op>: <name> must be float32, got <dtype>".
void require_float32(const py::array& a, const char* op, const char* name);
void require_writable(const py::array& a, const char* op, const char* name);
// Every byte of `a` is laid out C-contiguously.
void require_c_contiguous(const py::array& a, const char* op, const char* name);

// A 2-D float32 array whose rows are contiguous (stride of the last axis 4 bytes) and whose
// row stride is any whole number of floats, negative allowed.
struct RowsView {
  float* data;
  int64_t rows, n, ld;
};
RowsView rows_view(const py::array& a, const char* op, const char* name, bool writable);

// Data pointer of an array already checked with require_writable.
inline float* mutable_floats(const py::array& a) {
  return static_cast<float*>(const_cast<void*>(a.data()));
}

// Same shape or ValueError naming both arrays' shapes.
void require_same_shape(const py::array& a, const py::array& b, const char* op, const char* an,
                        const char* bn);

// A C-contiguous float32 array (the element-wise kernels' input).
void require_contiguous_float32(const py::array& a, const char* op, const char* name);

// `out`: C-contiguous, writable float32 with the shape of `like` (named like_name).
void require_output_like(const py::array& out, const py::array& like, const char* op,
                         const char* like_name);

}  // namespace bind

void bind_runtime(pybind11::module_& m);
void bind_softmax(pybind11::module_& m);
void bind_norm(pybind11::module_& m);
void bind_activation(pybind11::module_& m);
void bind_matmul(pybind11::module_& m);
void bind_attention(pybind11::module_& m);
void bind_rope(pybind11::module_& m);
void bind_kv_cache(pybind11::module_& m);

}  // namespace fastattn
