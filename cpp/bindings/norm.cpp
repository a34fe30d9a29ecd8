#include "kernels/norm.h"

#include "bindings/common.h"

namespace fastattn {

namespace py = pybind11;

namespace {
// Optional 1-D parameter of length n (weight / bias), C-contiguous float32; null if None.
const float* optional_vector(const py::object& obj, int64_t n, const char* op, const char* name) {
  if (obj.is_none()) return nullptr;
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(op) + ": " + name + " must be a numpy array or None");
  const auto a = py::reinterpret_borrow<py::array>(obj);
  bind::require_float32(a, op, name);
  bind::require_c_contiguous(a, op, name);
  if (a.ndim() != 1 || a.shape(0) != n)
    throw py::value_error(std::string(op) + ": " + name + " has shape " + bind::shape_str(a) +
                          ", expected (" + std::to_string(n) + ",) to match x's last axis");
  return static_cast<const float*>(a.data());
}
}  // namespace

void bind_norm(py::module_& m) {
  m.def("layer_norm", [](const py::array& x, const py::object& w, const py::object& b, float eps,
                         const py::array& out) {
    const char* op = "layer_norm";
    const bind::RowsView xv = bind::rows_view(x, op, "x", false);
    const bind::RowsView yv = bind::rows_view(out, op, "out", true);
    bind::require_same_shape(x, out, op, "x", "out");
    const float* wp = optional_vector(w, xv.n, op, "weight");
    const float* bp = optional_vector(b, xv.n, op, "bias");
    const auto fn = kernels<NormKernels>().layer_norm;
    py::gil_scoped_release release;
    fn(xv.data, xv.ld, yv.data, yv.ld, xv.rows, xv.n, wp, bp, eps);
  }, py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("eps"), py::arg("out"));

  m.def("rms_norm", [](const py::array& x, const py::object& w, float eps, const py::array& out) {
    const char* op = "rms_norm";
    const bind::RowsView xv = bind::rows_view(x, op, "x", false);
    const bind::RowsView yv = bind::rows_view(out, op, "out", true);
    bind::require_same_shape(x, out, op, "x", "out");
    const float* wp = optional_vector(w, xv.n, op, "weight");
    const auto fn = kernels<NormKernels>().rms_norm;
    py::gil_scoped_release release;
    fn(xv.data, xv.ld, yv.data, yv.ld, xv.rows, xv.n, wp, eps);
  }, py::arg("x"), py::arg("weight"), py::arg("eps"), py::arg("out"));
}

}  // namespace fastattn
