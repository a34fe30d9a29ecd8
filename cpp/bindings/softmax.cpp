#include "kernels/softmax.h"

#include "bindings/common.h"

namespace fastattn {

namespace py = pybind11;

void bind_softmax(py::module_& m) {
  m.def("softmax", [](const py::array& x, const py::array& out, bool log) {
    const char* op = log ? "log_softmax" : "softmax";
    const bind::RowsView xv = bind::rows_view(x, op, "x", false);
    const bind::RowsView yv = bind::rows_view(out, op, "out", true);
    bind::require_same_shape(x, out, op, "x", "out");
    const auto fn = kernels<SoftmaxKernels>().softmax;
    py::gil_scoped_release release;
    fn(xv.data, xv.ld, yv.data, yv.ld, xv.rows, xv.n, log);
  }, py::arg("x"), py::arg("out"), py::arg("log"),
     "Row-wise softmax of a 2-D float32 array with contiguous rows into out.");
}

}  // namespace fastattn
