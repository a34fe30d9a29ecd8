#include "kernels/activation.h"

#include "bindings/common.h"

namespace fastattn {

namespace py = pybind11;

namespace {
Activation parse_activation(const std::string& name) {
  if (name == "relu") return Activation::relu;
  if (name == "gelu") return Activation::gelu;
  if (name == "gelu_tanh") return Activation::gelu_tanh;
  if (name == "silu") return Activation::silu;
  throw py::value_error("activation must be one of 'relu', 'gelu', 'gelu_tanh', 'silu', got '" +
                        name + "'");
}
}  // namespace

void bind_activation(py::module_& m) {
  // x and out: C-contiguous float32 of the same shape (any ndim); out may be x, else apart.
  m.def("activation", [](const std::string& name, const py::object& x_obj,
                         const py::object& out_obj) {
    const Activation kind = parse_activation(name);
    const char* op = "activation";
    const py::array x = bind::ndarray(x_obj, op, "x"), out = bind::ndarray(out_obj, op, "out");
    bind::require_contiguous_float32(x, op, "x");
    bind::require_output_like(out, x, op, "x");
    const float* xp = static_cast<const float*>(x.data());
    float* yp = bind::mutable_floats(out);
    const int64_t n = x.size();
    const auto fn = kernels<ActivationKernels>().apply;
    py::gil_scoped_release release;
    fn(kind, xp, yp, n);
  }, py::arg("name"), py::arg("x"), py::arg("out"));

  m.def("swiglu", [](const py::object& gate_obj, const py::object& up_obj,
                     const py::object& out_obj) {
    const char* op = "swiglu";
    const py::array gate = bind::ndarray(gate_obj, op, "gate");
    const py::array up = bind::ndarray(up_obj, op, "up"), out = bind::ndarray(out_obj, op, "out");
    bind::require_contiguous_float32(gate, op, "gate");
    bind::require_contiguous_float32(up, op, "up");
    bind::require_same_shape(gate, up, op, "gate", "up");
    bind::require_output_like(out, gate, op, "gate");
    bind::require_separate(out, up, op, "out", "up", true);
    const float* g = static_cast<const float*>(gate.data());
    const float* u = static_cast<const float*>(up.data());
    float* y = bind::mutable_floats(out);
    const int64_t n = gate.size();
    const auto fn = kernels<ActivationKernels>().swiglu;
    py::gil_scoped_release release;
    fn(g, u, y, n);
  }, py::arg("gate"), py::arg("up"), py::arg("out"));
}

}  // namespace fastattn
