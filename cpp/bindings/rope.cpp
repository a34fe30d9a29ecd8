#include "kernels/rope.h"

#include "bindings/common.h"

namespace fastattn {

namespace py = pybind11;

void bind_rope(py::module_& m) {
  m.def("rope", [](const py::object& x_obj, const py::object& cos_obj, const py::object& sin_obj,
                   const py::object& out_obj, int64_t rot, bool interleaved) {
    const char* op = "rope";
    const py::array x = bind::ndarray(x_obj, op, "x"), out = bind::ndarray(out_obj, op, "out");
    const py::array cos = bind::ndarray(cos_obj, op, "cos"), sin = bind::ndarray(sin_obj, op, "sin");
    bind::require_contiguous_float32(x, op, "x");
    if (x.ndim() != 4)
      throw py::value_error(std::string(op) + ": x must be 4-D (batch, heads, L, D), got " +
                            std::to_string(x.ndim()) + "-D");
    bind::require_output_like(out, x, op, "x");
    const int64_t B = x.shape(0), H = x.shape(1), L = x.shape(2), D = x.shape(3);
    if (rot < 0 || rot > D || rot % 2 != 0)
      throw py::value_error(std::string(op) + ": rotary_dim must be even and in [0, " +
                            std::to_string(D) + "], got " + std::to_string(rot));
    const int64_t width = interleaved ? rot : rot / 2;
    for (const auto* t : {&cos, &sin}) {
      const char* name = t == &cos ? "cos" : "sin";
      bind::require_contiguous_float32(*t, op, name);
      if (t->ndim() != 3 || (t->shape(0) != 1 && t->shape(0) != B) || t->shape(1) != L ||
          t->shape(2) != width)
        throw py::value_error(std::string(op) + ": " + name + " table has shape " +
                              bind::shape_str(*t) + ", expected (1 or " + std::to_string(B) +
                              ", " + std::to_string(L) + ", " + std::to_string(width) + ")");
    }
    bind::require_separate(out, cos, op, "out", "cos", false);
    bind::require_separate(out, sin, op, "out", "sin", false);
    const int64_t tbs = cos.shape(0) == 1 ? 0 : L;
    const auto fn = kernels<RopeKernels>().rope;
    const float* cp = static_cast<const float*>(cos.data());
    const float* sp = static_cast<const float*>(sin.data());
    const float* xf = static_cast<const float*>(x.data());
    float* yf = bind::mutable_floats(out);
    py::gil_scoped_release release;
    fn(xf, yf, B, H, L, D, cp, sp, tbs, rot, interleaved);
  }, py::arg("x"), py::arg("cos"), py::arg("sin"), py::arg("out"), py::arg("rot").noconvert(),
     py::arg("interleaved").noconvert(),
     "Rotates the first rot features of every row of x (B, H, L, D) with the cos/sin tables.");
}

}  // namespace fastattn
