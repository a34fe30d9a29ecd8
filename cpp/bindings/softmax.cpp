#include "kernels/softmax.h"

#include "bindings/common.h"

namespace fastattn {

namespace py = pybind11;

void bind_softmax(py::module_& m) {
  m.def("softmax", [](const py::object& x_obj, const py::object& out_obj, bool log) {
    const char* op = log ? "log_softmax" : "softmax";
    const py::array x = bind::ndarray(x_obj, op, "x"), out = bind::ndarray(out_obj, op, "out");
    bind::RowsView xv, yv;
    bind::rows_in_out(x, out, op, xv, yv);
    const auto fn = kernels<SoftmaxKernels>().softmax;
    py::gil_scoped_release release;
    fn(xv.data, xv.ld, yv.data, yv.ld, xv.rows, xv.n, log);
  }, py::arg("x"), py::arg("out"), py::arg("log").noconvert(),
     "Row-wise softmax of a 2-D float32 array with contiguous rows into out.");
}

}  // namespace fastattn
