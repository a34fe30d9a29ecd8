// Binding of the low-precision-weight matmul (kernels/matmul/lowp.h). The Python wrapper
// (fastattn.ops.matmul with a PackedMatrix of weights != "float32") validates with the
// user-facing messages; these checks are the second line, so that a direct call into
// fastattn._core cannot read or write out of bounds: the weight's and the scales' dtypes,
// shapes and contiguity are checked against K and N, every operand against the others.
#include "kernels/matmul/lowp.h"

#include <cstdint>
#include <limits>
#include <string>

#include "bindings/common.h"

namespace fastattn {

namespace py = pybind11;

namespace {

constexpr const char* kOp = "matmul";

std::string prefix(const char* name) { return std::string(kOp) + ": " + name; }

WeightFormat parse_format(const py::handle& h) {
  if (!py::isinstance<py::str>(h))
    throw py::type_error(prefix("weights") + " must be a str, got " + bind::type_name(h));
  const std::string s = py::cast<std::string>(h);
  if (s == "bfloat16") return WeightFormat::bfloat16;
  if (s == "float16") return WeightFormat::float16;
  if (s == "q8") return WeightFormat::q8;
  if (s == "q4") return WeightFormat::q4;
  throw py::value_error(prefix("weights") +
                        " must be 'bfloat16', 'float16', 'q8' or 'q4', got '" + s + "'");
}

void require_shape2(const py::array& x, int64_t r, int64_t c, const char* name) {
  if (x.ndim() != 2 || x.shape(0) != r || x.shape(1) != c)
    throw py::value_error(prefix(name) + " has shape " + bind::shape_str(x) + ", expected (" +
                          std::to_string(r) + ", " + std::to_string(c) + ")");
}

void matmul_lowp(const py::object& a_obj, const py::object& weights, const py::object& w_obj,
                 const py::object& s_obj, int64_t K, int64_t N, const py::object& out_obj,
                 const py::object& bias_obj, const py::object& activation,
                 const py::object& residual_obj) {
  const WeightFormat fmt = parse_format(weights);
  const py::array a = bind::float32_array(a_obj, kOp, "a");
  const py::array w = bind::ndarray(w_obj, kOp, "weight");
  const py::array out = bind::ndarray(out_obj, kOp, "out");
  if (K < 0 || N < 0 || K > std::numeric_limits<int64_t>::max() - kLowpBlock ||
      bind::checked_mul(K + kLowpBlock, N) < 0)
    throw py::value_error("matmul: K and N must be >= 0 (and K N fit int64), got K = " +
                          std::to_string(K) + ", N = " + std::to_string(N));
  bind::require_ndim(a, 2, kOp, "a");
  if (a.shape(1) != K)
    throw py::value_error("matmul: a has shape " + bind::shape_str(a) +
                          ", which does not fit the weight (K = " + std::to_string(K) + ")");
  const int64_t M = a.shape(0), Kp = (K + kLowpBlock - 1) / kLowpBlock * kLowpBlock;

  // the weight: dtype and shape of the format, C-contiguous (rows read in place)
  const bool sixteen = fmt == WeightFormat::bfloat16 || fmt == WeightFormat::float16;
  const py::dtype wd = w.dtype();
  const bool ok_dtype =
      sixteen ? bind::has_dtype(wd, 'u', 2) ||
                    (fmt == WeightFormat::float16 && bind::has_dtype(wd, 'f', 2))
      : fmt == WeightFormat::q8 ? bind::has_dtype(wd, 'i', 1)
                                : bind::has_dtype(wd, 'u', 1);
  if (!ok_dtype)
    throw py::type_error(prefix("weight") + " must be " +
                         (sixteen ? "uint16" : fmt == WeightFormat::q8 ? "int8" : "uint8") +
                         " for " + py::cast<std::string>(weights) + ", got " +
                         std::string(py::str(w.dtype())));
  require_shape2(w, N, sixteen ? K : fmt == WeightFormat::q8 ? Kp : Kp / 2, "weight");
  bind::require_c_contiguous(w, kOp, "weight");
  py::array scales;
  if (sixteen) {
    if (!s_obj.is_none())
      throw py::value_error(prefix("scales") + " must be None for " +
                            py::cast<std::string>(weights));
  } else {
    scales = bind::ndarray(s_obj, kOp, "scales");
    if (!bind::has_dtype(scales.dtype(), 'f', 2) && !bind::has_dtype(scales.dtype(), 'u', 2))
      throw py::type_error(prefix("scales") + " must be float16, got " +
                           std::string(py::str(scales.dtype())));
    require_shape2(scales, N, Kp / kLowpBlock, "scales");
    bind::require_c_contiguous(scales, kOp, "scales");
  }

  // out (M, N): float32, writable, contiguous rows, apart from every input
  bind::require_float32(out, kOp, "out");
  bind::require_writable(out, kOp, "out");
  require_shape2(out, M, N, "out");
  if (N > 1 && M > 0 && out.strides(1) != static_cast<py::ssize_t>(sizeof(float)))
    throw py::value_error("matmul: out rows must be contiguous");
  bind::require_no_zero_strides(out, kOp, "out");
  bind::require_separate(out, a, kOp, "out", "a", false);
  bind::require_separate(out, w, kOp, "out", "weight", false);
  if (!sixteen) bind::require_separate(out, scales, kOp, "out", "scales", false);

  MatmulEpilogue ep;
  ep.activation = bind::epilogue_activation(activation, kOp);
  ep.bias = bind::epilogue_bias(bias_obj, N, out, kOp);
  py::array residual;
  if (!residual_obj.is_none()) {
    residual = bind::float32_array(residual_obj, kOp, "residual");
    require_shape2(residual, M, N, "residual");
    if (M > 0 && N > 1 && residual.strides(1) != static_cast<py::ssize_t>(sizeof(float)))
      throw py::value_error("matmul: residual rows must be contiguous");
    bind::require_separate(out, residual, kOp, "out", "residual", false);
    ep.residual = static_cast<const float*>(residual.data());
    ep.ld_residual = bind::element_stride(residual, 0, kOp, "residual");
  }
  if (M == 0 || N == 0) return;
  const StridedMatrix am{static_cast<const float*>(a.data()),
                         bind::element_stride(a, 0, kOp, "a"),
                         bind::element_stride(a, 1, kOp, "a")};
  const LowpMatrix lm{fmt, w.data(),
                      sixteen ? nullptr : static_cast<const uint16_t*>(scales.data()), K, N};
  float* c = bind::mutable_floats(out);
  const int64_t ldc = bind::element_stride(out, 0, kOp, "out");
  const auto fn = kernels<LowpKernels>().matmul;
  py::gil_scoped_release release;
  fn(M, am, lm, c, ldc, ep);
}

}  // namespace

void bind_matmul_lowp(py::module_& m) {
  // a (M, K) float32, any strides; weight / scales in the format's canonical storage
  // (C-contiguous); out (M, N) float32 with contiguous rows, apart from every input.
  m.def("matmul_lowp", &matmul_lowp, py::arg("a"), py::arg("weights"), py::arg("weight"),
        py::arg("scales"), py::arg("K").noconvert(), py::arg("N").noconvert(), py::arg("out"),
        py::arg("bias"), py::arg("activation"), py::arg("residual"));
  m.def("matmul_lowp_gemv_max_m", [] { return kernels<LowpKernels>().gemv_max_m(); });
}

}  // namespace fastattn
