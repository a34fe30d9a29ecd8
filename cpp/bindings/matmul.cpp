// matmul bindings. The Python wrapper (fastattn.ops.matmul) broadcasts the batch dimensions,
// applies the transposes as views and validates with the user-facing messages; these checks
// are the second line, so that no direct call into fastattn._core can read or write out of
// bounds: every operand's shape is checked against the others, and offsets come from the
// arrays' own strides.
#include "kernels/matmul/matmul.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bindings/common.h"

namespace fastattn {

namespace py = pybind11;

namespace {

constexpr const char* kOp = "matmul";

void require_ndim_at_least(const py::array& x, int n, const char* name) {
  if (x.ndim() < n)
    throw py::value_error(std::string(kOp) + ": " + name + " must be at least " +
                          std::to_string(n) + "-D, got " + std::to_string(x.ndim()) + "-D");
}

void require_dim(const py::array& x, py::ssize_t axis, int64_t expected, const char* name) {
  if (x.shape(axis) != expected)
    throw py::value_error(std::string(kOp) + ": " + name + " has shape " + bind::shape_str(x) +
                          ", which does not fit the product");
}

// The matrix at the last two axes of x: strides in elements.
StridedMatrix matrix_of(const py::array& x, const char* name) {
  const py::ssize_t d = x.ndim();
  return {static_cast<const float*>(x.data()), bind::element_stride(x, d - 2, kOp, name),
          bind::element_stride(x, d - 1, kOp, name)};
}

// Element offsets of every batch item (the axes before the last two), C order.
std::vector<int64_t> batch_offsets(const py::array& x, const char* name) {
  const py::ssize_t nb = x.ndim() - 2;
  int64_t count = 1;
  for (py::ssize_t d = 0; d < nb; ++d) count *= x.shape(d);
  std::vector<int64_t> off(static_cast<std::size_t>(count), 0);
  std::vector<int64_t> idx(static_cast<std::size_t>(nb), 0);
  for (int64_t t = 0; t < count; ++t) {
    int64_t o = 0;
    for (py::ssize_t d = 0; d < nb; ++d) o += idx[d] * bind::element_stride(x, d, kOp, name);
    off[static_cast<std::size_t>(t)] = o;
    for (py::ssize_t d = nb - 1; d >= 0; --d) {
      if (++idx[d] < x.shape(d)) break;
      idx[d] = 0;
    }
  }
  return off;
}

// The epilogue's arrays: bias (N,) contiguous and residual (batch..., M, N) with contiguous
// rows, both optional, both read-only inputs apart from out. They are the caller's own arrays
// (borrowed, never converted), alive for the whole call.
struct Epilogue {
  MatmulEpilogue ep;
  py::object residual;  // the residual array, null without one
};

Epilogue epilogue_of(const py::object& bias, const py::object& activation,
                     const py::object& residual, const py::array& out, int64_t N) {
  Epilogue e;
  MatmulEpilogue& ep = e.ep;
  ep.activation = bind::epilogue_activation(activation, kOp);
  ep.bias = bind::epilogue_bias(bias, N, out, kOp);
  if (!residual.is_none()) {
    const py::array r = bind::float32_array(residual, kOp, "residual");
    bind::require_same_shape(out, r, kOp, "out", "residual");
    const py::ssize_t d = r.ndim();
    if (r.size() > 0 && N > 1 && r.strides(d - 1) != static_cast<py::ssize_t>(sizeof(float)))
      throw py::value_error("matmul: residual rows must be contiguous");
    // the kernel keeps partial sums in out: a residual sharing its memory would be overwritten
    bind::require_separate(out, r, kOp, "out", "residual", false);
    ep.residual = static_cast<const float*>(r.data());
    ep.ld_residual = bind::element_stride(r, d - 2, kOp, "residual");
    e.residual = r;
  }
  return e;
}

void check_out(const py::array& out, int64_t N) {
  bind::require_float32(out, kOp, "out");
  bind::require_writable(out, kOp, "out");
  require_ndim_at_least(out, 2, "out");
  const py::ssize_t d = out.ndim();
  if (out.size() > 0 && N > 1 && out.strides(d - 1) != static_cast<py::ssize_t>(sizeof(float)))
    throw py::value_error("matmul: out rows must be contiguous");
  bind::require_no_zero_strides(out, kOp, "out");
}

// Elements of the packed form of a (K, N) matrix: ceil(N / nr) panels of K x nr; -1 when that
// does not fit int64 (a broadcast b can have any K).
int64_t packed_size(int64_t K, int64_t N, int64_t nr) {
  return bind::checked_mul(bind::checked_mul(N / nr + (N % nr != 0), nr), K);
}

void check_packed(const py::array& packed, int64_t K, int64_t N, int64_t nr, bool writable) {
  bind::require_c_contiguous(packed, kOp, "packed");
  if (writable) bind::require_writable(packed, kOp, "packed");
  const int64_t expected = packed_size(K, N, nr);
  if (expected < 0 || static_cast<int64_t>(packed.size()) != expected)
    throw py::value_error("matmul: packed buffer has " + std::to_string(packed.size()) +
                          " elements, expected ceil(N / " + std::to_string(nr) + ") * " +
                          std::to_string(nr) + " * K for K = " + std::to_string(K) + ", N = " +
                          std::to_string(N) + " on this ISA path");
}

// h is a float32 ndarray of ndim dimensions, at a 4-byte aligned address, with strides in whole
// floats (the kernels index floats): what the kernels take in place.
bool is_f32(const py::handle& h, py::ssize_t ndim) {
  if (!py::isinstance<py::array>(h)) return false;
  const auto x = py::reinterpret_borrow<py::array>(h);
  if (x.ndim() != ndim || !bind::is_float32(x.dtype())) return false;
  if (reinterpret_cast<std::uintptr_t>(x.data()) % sizeof(float) != 0) return false;
  for (py::ssize_t d = 0; d < ndim; ++d)
    if (x.shape(d) > 1 && x.strides(d) % static_cast<py::ssize_t>(sizeof(float)) != 0)
      return false;
  return true;
}
bool rows_contiguous(const py::array& x) {
  const py::ssize_t d = x.ndim() - 1;
  return x.shape(d) <= 1 || x.strides(d) == static_cast<py::ssize_t>(sizeof(float));
}

// The common call, 2-D operands with everything valid, decided and run without leaving C++ (a
// Python wrapper's checks cost several microseconds, more than a 32 x 32 product). Returns the
// result, or None for anything else - batches, PackedMatrix, copies needed (a misaligned
// view), overlaps, invalid arguments - which fastattn.ops.matmul then handles (and reports) in
// Python. Per-call cost matters here (a 32^3 product is ~1 us of arithmetic): no temporary
// Python objects are made (a default-constructed py::array allocates an empty ndarray), only
// borrowed views of the arguments.
py::object matmul_2d(const py::handle& a_h, const py::handle& b_h, const py::handle& ta,
                     const py::handle& tb, const py::handle& bias_h, const py::handle& act_h,
                     const py::handle& res_h, const py::handle& out_h) {
  if (!is_f32(a_h, 2) || !is_f32(b_h, 2) || !PyBool_Check(ta.ptr()) || !PyBool_Check(tb.ptr()))
    return py::none();
  const auto a = py::reinterpret_borrow<py::array>(a_h);
  const auto b = py::reinterpret_borrow<py::array>(b_h);
  StridedMatrix am = matrix_of(a, "a"), bm = matrix_of(b, "b");
  int64_t M = a.shape(0), K = a.shape(1), Kb = b.shape(0), N = b.shape(1);
  if (ta.ptr() == Py_True) std::swap(M, K), std::swap(am.rs, am.cs);
  if (tb.ptr() == Py_True) std::swap(Kb, N), std::swap(bm.rs, bm.cs);
  if (K != Kb) return py::none();
  MatmulEpilogue ep;
  if (!act_h.is_none()) {
    if (!py::isinstance<py::str>(act_h)) return py::none();
    const std::string s = py::cast<std::string>(act_h);
    if (s == "relu") ep.activation = Activation::relu;
    else if (s == "gelu") ep.activation = Activation::gelu;
    else if (s == "gelu_tanh") ep.activation = Activation::gelu_tanh;
    else if (s == "silu") ep.activation = Activation::silu;
    else return py::none();
  }
  const bool has_bias = !bias_h.is_none(), has_res = !res_h.is_none();
  if (has_bias) {
    if (!is_f32(bias_h, 1)) return py::none();
    const auto bias = py::reinterpret_borrow<py::array>(bias_h);
    if (bias.shape(0) != N || !rows_contiguous(bias)) return py::none();
    ep.bias = static_cast<const float*>(bias.data());
  }
  if (has_res) {
    if (!is_f32(res_h, 2)) return py::none();
    const auto res = py::reinterpret_borrow<py::array>(res_h);
    if (res.shape(0) != M || res.shape(1) != N || !rows_contiguous(res)) return py::none();
    ep.residual = static_cast<const float*>(res.data());
    ep.ld_residual = bind::element_stride(res, 0, kOp, "residual");
  }
  const bool new_out = out_h.is_none();
  if (!new_out && !is_f32(out_h, 2)) return py::none();
  py::array out = new_out ? py::array(py::array_t<float>({M, N}))
                          : py::reinterpret_borrow<py::array>(out_h);
  if (!new_out &&
      (out.shape(0) != M || out.shape(1) != N || !out.writeable() || !rows_contiguous(out) ||
       (M > 1 && out.strides(0) == 0) || bind::overlaps(out, a) || bind::overlaps(out, b) ||
       (has_bias && bind::overlaps(out, py::reinterpret_borrow<py::array>(bias_h))) ||
       (has_res && bind::overlaps(out, py::reinterpret_borrow<py::array>(res_h)))))
    return py::none();
  if (M == 0 || N == 0) return std::move(out);
  float* c = bind::mutable_floats(out);
  const int64_t ldc = bind::element_stride(out, 0, kOp, "out");
  const auto fn = kernels<MatmulKernels>().gemm;
  {
    py::gil_scoped_release release;
    fn(M, N, K, am, bm, c, ldc, ep);
  }
  return std::move(out);
}

}  // namespace

void bind_matmul(py::module_& m) {
  m.def("matmul_2d", &matmul_2d);

  // a (S..., M, K), b (S..., K, N), out (S..., M, N) with the same batch shape S (broadcast by
  // the caller); any strides for a and b, contiguous rows for out and residual; out apart from
  // every input.
  m.def("matmul", [](const py::object& a_obj, const py::object& b_obj, const py::object& out_obj,
                     const py::object& bias, const py::object& activation,
                     const py::object& residual) {
    const py::array a = bind::float32_array(a_obj, kOp, "a");
    const py::array b = bind::float32_array(b_obj, kOp, "b");
    const py::array out = bind::ndarray(out_obj, kOp, "out");
    require_ndim_at_least(a, 2, "a");
    require_ndim_at_least(b, 2, "b");
    const py::ssize_t d = a.ndim();
    if (b.ndim() != d || out.ndim() != d)
      throw py::value_error("matmul: a, b and out must have the same number of dimensions, got " +
                            std::to_string(a.ndim()) + ", " + std::to_string(b.ndim()) + " and " +
                            std::to_string(out.ndim()));
    const int64_t M = a.shape(d - 2), K = a.shape(d - 1), N = b.shape(d - 1);
    require_dim(b, d - 2, K, "b");
    check_out(out, N);
    require_dim(out, d - 2, M, "out");
    require_dim(out, d - 1, N, "out");
    for (py::ssize_t i = 0; i < d - 2; ++i) {
      require_dim(b, i, a.shape(i), "b");
      require_dim(out, i, a.shape(i), "out");
    }
    bind::require_separate(out, a, kOp, "out", "a", false);
    bind::require_separate(out, b, kOp, "out", "b", false);
    const Epilogue e = epilogue_of(bias, activation, residual, out, N);
    const MatmulEpilogue& ep = e.ep;
    const StridedMatrix am = matrix_of(a, "a"), bm = matrix_of(b, "b");
    if (out.size() == 0) return;  // (a broadcast batch of empty products: no offsets to list)
    float* c = bind::mutable_floats(out);
    const int64_t ldc = bind::element_stride(out, d - 2, kOp, "out");
    const auto& k = kernels<MatmulKernels>();
    if (d == 2) {
      py::gil_scoped_release release;
      k.gemm(M, N, K, am, bm, c, ldc, ep);
      return;
    }
    const std::vector<int64_t> ao = batch_offsets(a, "a"), bo = batch_offsets(b, "b"),
                               co = batch_offsets(out, "out");
    std::vector<int64_t> ro;
    if (ep.residual) ro = batch_offsets(py::reinterpret_borrow<py::array>(e.residual), "residual");
    const int64_t batch = static_cast<int64_t>(ao.size());
    py::gil_scoped_release release;
    k.gemm_batched(batch, ao.data(), bo.data(), co.data(), ep.residual ? ro.data() : nullptr, M,
                   N, K, am, bm, c, ldc, ep);
  }, py::arg("a"), py::arg("b"), py::arg("out"), py::arg("bias"), py::arg("activation"),
     py::arg("residual"));

  m.def("matmul_panel_width", [] { return kernels<MatmulKernels>().panel_width(); });

  // packed: C-contiguous float32 of ceil(N / NR) * K * NR elements, apart from b.
  m.def("matmul_pack_b", [](const py::object& b_obj, const py::object& packed_obj) {
    const py::array b = bind::float32_array(b_obj, kOp, "b");
    const py::array packed = bind::float32_array(packed_obj, kOp, "packed");
    bind::require_ndim(b, 2, kOp, "b");
    const auto& k = kernels<MatmulKernels>();
    const int64_t K = b.shape(0), N = b.shape(1), nr = k.panel_width();
    check_packed(packed, K, N, nr, true);
    bind::require_separate(packed, b, kOp, "packed", "b", false);
    const StridedMatrix bm = matrix_of(b, "b");
    float* p = bind::mutable_floats(packed);
    py::gil_scoped_release release;
    k.pack_b(K, N, bm, p);
  }, py::arg("b"), py::arg("packed"));

  m.def("matmul_packed", [](const py::object& a_obj, const py::object& packed_obj, int64_t K,
                            int64_t N, const py::object& out_obj, const py::object& bias,
                            const py::object& activation, const py::object& residual) {
    const py::array a = bind::float32_array(a_obj, kOp, "a");
    const py::array packed = bind::float32_array(packed_obj, kOp, "packed");
    const py::array out = bind::ndarray(out_obj, kOp, "out");
    bind::require_ndim(a, 2, kOp, "a");
    const auto& k = kernels<MatmulKernels>();
    const int64_t M = a.shape(0), nr = k.panel_width();
    if (K < 0 || N < 0)
      throw py::value_error("matmul: K and N must be >= 0, got K = " + std::to_string(K) +
                            ", N = " + std::to_string(N));
    if (a.shape(1) != K)
      throw py::value_error("matmul: a has shape " + bind::shape_str(a) +
                            ", which does not fit the packed matrix (K = " + std::to_string(K) +
                            ")");
    check_packed(packed, K, N, nr, false);
    check_out(out, N);
    if (out.ndim() != 2 || out.shape(0) != M || out.shape(1) != N)
      throw py::value_error("matmul: out has shape " + bind::shape_str(out) + ", expected (" +
                            std::to_string(M) + ", " + std::to_string(N) + ")");
    bind::require_separate(out, a, kOp, "out", "a", false);
    bind::require_separate(out, packed, kOp, "out", "packed", false);
    const Epilogue e = epilogue_of(bias, activation, residual, out, N);
    const StridedMatrix am = matrix_of(a, "a");
    const float* p = static_cast<const float*>(packed.data());
    float* c = bind::mutable_floats(out);
    const int64_t ldc = bind::element_stride(out, 0, kOp, "out");
    py::gil_scoped_release release;
    k.gemm_packed(M, N, K, am, p, c, ldc, e.ep);
  }, py::arg("a"), py::arg("packed"), py::arg("K").noconvert(), py::arg("N").noconvert(),
     py::arg("out"), py::arg("bias"), py::arg("activation"), py::arg("residual"));
}

}  // namespace fastattn
