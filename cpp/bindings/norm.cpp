#include "kernels/norm.h"

#include "bindings/common.h"

namespace fastattn {

namespace py = pybind11;

namespace {
// Optional 1-D parameter of length n (weight / bias), C-contiguous float32, apart from out;
// null if None.
const float* optional_vector(const py::object& obj, int64_t n, const py::array& out,
                             const char* op, const char* name) {
  if (obj.is_none()) return nullptr;
  const py::array a = bind::float32_array(obj, op, name);
  bind::require_c_contiguous(a, op, name);
  if (a.ndim() != 1 || a.shape(0) != n)
    throw py::value_error(std::string(op) + ": " + name + " has shape " + bind::shape_str(a) +
                          ", expected (" + std::to_string(n) + ",) to match x's last axis");
  bind::require_separate(out, a, op, "out", name, false);
  return static_cast<const float*>(a.data());
}

}  // namespace

void bind_norm(py::module_& m) {
  m.def("layer_norm", [](const py::object& x_obj, const py::object& w, const py::object& b,
                         double eps, const py::object& out_obj) {
    const char* op = "layer_norm";
    const py::array x = bind::ndarray(x_obj, op, "x"), out = bind::ndarray(out_obj, op, "out");
    bind::RowsView xv, yv;
    bind::rows_in_out(x, out, op, xv, yv);
    const float* wp = optional_vector(w, xv.n, out, op, "weight");
    const float* bp = optional_vector(b, xv.n, out, op, "bias");
    const float e = bind::float32_scalar(eps, op, "eps", 0.0);
    const auto fn = kernels<NormKernels>().layer_norm;
    py::gil_scoped_release release;
    fn(xv.data, xv.ld, yv.data, yv.ld, xv.rows, xv.n, wp, bp, e);
  }, py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("eps"), py::arg("out"));

  m.def("rms_norm", [](const py::object& x_obj, const py::object& w, double eps,
                       const py::object& out_obj) {
    const char* op = "rms_norm";
    const py::array x = bind::ndarray(x_obj, op, "x"), out = bind::ndarray(out_obj, op, "out");
    bind::RowsView xv, yv;
    bind::rows_in_out(x, out, op, xv, yv);
    const float* wp = optional_vector(w, xv.n, out, op, "weight");
    const float e = bind::float32_scalar(eps, op, "eps", 0.0);
    const auto fn = kernels<NormKernels>().rms_norm;
    py::gil_scoped_release release;
    fn(xv.data, xv.ld, yv.data, yv.ld, xv.rows, xv.n, wp, e);
  }, py::arg("x"), py::arg("weight"), py::arg("eps"), py::arg("out"));
}

}  // namespace fastattn
