// Runtime controls: ISA path, threads, and cpu_info().
#include <pybind11/stl.h>

#include <stdexcept>

#include "bindings/common.h"
#include "core/isa.h"
#include "core/threading.h"
#include "kernels/vector_math_probe.h"

#ifndef FASTATTN_COMPILER
#define FASTATTN_COMPILER "unknown"
#endif
#ifndef FASTATTN_BUILD_FLAGS
#define FASTATTN_BUILD_FLAGS ""
#endif

namespace fastattn {

namespace py = pybind11;

void bind_runtime(py::module_& m) {
  m.def("available_isas", &available_isas, "ISA paths this CPU and OS support, lowest first.");
  m.def("best_isa", [] { return std::string(isa_name(best_isa())); });
  m.def("get_isa", [] { return std::string(isa_name(current_isa())); });
  m.def("set_isa", [](const std::string& name) { set_isa(parse_isa(name)); }, py::arg("name"));
  m.def("get_num_threads", &num_threads);
  m.def("set_num_threads", &set_num_threads, py::arg("n").noconvert());
  m.def("have_openmp", &have_openmp);
  m.def("cpu_model", &cpu_model);
  m.def("cpu_features", &cpu_features);
  m.attr("compiler") = FASTATTN_COMPILER;
  m.attr("build_flags") = FASTATTN_BUILD_FLAGS;

  // Element-wise SIMD exp / erfc, for the accuracy tests only.
  m.def("vector_math", [](const std::string& fn, const py::object& x_obj,
                          const py::object& out_obj) {
    const char* op = "vector_math";
    const py::array x = bind::ndarray(x_obj, op, "x"), out = bind::ndarray(out_obj, op, "out");
    bind::require_contiguous_float32(x, op, "x");
    bind::require_output_like(out, x, op, "x");
    const auto& k = kernels<VectorMathKernels>();
    auto f = fn == "exp" ? k.exp : fn == "erfc" ? k.erfc : nullptr;
    if (!f) throw py::value_error("vector_math: fn must be 'exp' or 'erfc', got '" + fn + "'");
    const float* xp = static_cast<const float*>(x.data());
    float* yp = bind::mutable_floats(out);
    const int64_t n = x.size();
    py::gil_scoped_release release;
    f(xp, yp, n);
  }, py::arg("fn"), py::arg("x"), py::arg("out"));
}

}  // namespace fastattn
