#include "bindings/common.h"

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

void require_float32(const py::array& a, const char* op, const char* name) {
  if (!a.dtype().is(py::dtype::of<float>()))
    throw py::type_error(std::string(op) + ": " + name + " must be float32, got " +
                         std::string(py::str(a.dtype())));
}

void require_writable(const py::array& a, const char* op, const char* name) {
  if (!a.writeable())
    throw py::value_error(std::string(op) + ": " + name + " is read-only");
}

void require_c_contiguous(const py::array& a, const char* op, const char* name) {
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(op) + ": " + name + " must be C-contiguous");
}

RowsView rows_view(const py::array& a, const char* op, const char* name, bool writable) {
  require_float32(a, op, name);
  if (writable) require_writable(a, op, name);
  if (a.ndim() != 2)
    throw py::value_error(std::string(op) + ": " + name + " must be 2-D, got " +
                          std::to_string(a.ndim()) + "-D");
  const int64_t rows = a.shape(0), n = a.shape(1);
  if (n > 1 && a.strides(1) != static_cast<py::ssize_t>(sizeof(float)))
    throw py::value_error(std::string(op) + ": " + name + " rows must be contiguous");
  if (rows > 1 && a.strides(0) % static_cast<py::ssize_t>(sizeof(float)) != 0)
    throw py::value_error(std::string(op) + ": " + name + " row stride is not a whole float");
  const int64_t ld = rows > 1 ? a.strides(0) / static_cast<py::ssize_t>(sizeof(float)) : n;
  // mutable_data() would raise for read-only arrays; inputs are only ever read through it.
  float* data = static_cast<float*>(const_cast<void*>(a.data()));
  return {data, rows, n, ld};
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
}

}  // namespace bind
}  // namespace fastattn
