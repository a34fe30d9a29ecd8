// attention: argument checks and the call into the kernel table. fastattn.ops.attention does
// the user-facing validation (broadcasting the mask, 3-D inputs, copies of odd strides); these
// checks make a direct call into _core safe: every index the kernel forms stays in bounds.
// Semantics, path choice and numerics: docs/attention.md.
#include "kernels/attention/attention.h"

#include <cmath>
#include <string>
#include <utility>

#include "bindings/common.h"

namespace fastattn {

namespace py = pybind11;

namespace {

constexpr const char* kOp = "attention";

[[noreturn]] void fail(const std::string& msg) { throw py::value_error(std::string(kOp) + ": " + msg); }

// A 4-D float32 array whose last axis is contiguous and whose strides are whole floats.
AttentionTensor tensor4(const py::array& a, const char* name, bool writable) {
  bind::require_float32(a, kOp, name);
  if (writable) bind::require_writable(a, kOp, name);
  if (a.ndim() != 4) fail(std::string(name) + " must be 4-D, got " + std::to_string(a.ndim()) + "-D");
  if (a.size() == 0) return {static_cast<float*>(const_cast<void*>(a.data())), 0, 0, 0};  // never read
  if (a.shape(3) > 1 && a.strides(3) != static_cast<py::ssize_t>(sizeof(float)))
    fail(std::string(name) + " must have a contiguous last axis");
  for (int i = 0; i < 3; ++i)
    if (a.strides(i) % static_cast<py::ssize_t>(sizeof(float)) != 0)
      fail(std::string(name) + " strides must be whole floats");
  const auto st = [&](int i) { return static_cast<int64_t>(a.strides(i) / 4); };
  return {static_cast<float*>(const_cast<void*>(a.data())), st(0), st(1), st(2)};
}

void require_shape4(const py::array& a, const char* name, int64_t d0, int64_t d1, int64_t d2,
                    int64_t d3, const char* why) {
  if (a.shape(0) != d0 || a.shape(1) != d1 || a.shape(2) != d2 || a.shape(3) != d3)
    fail(std::string(name) + " has shape " + bind::shape_str(a) + ", expected (" +
         std::to_string(d0) + ", " + std::to_string(d1) + ", " + std::to_string(d2) + ", " +
         std::to_string(d3) + ")" + why);
}

// One relative-position table, (B, Hq, Lq, K) float32 with whole-float strides (any sign, 0 on
// broadcast axes): its width K, and its strides into `stride`.
int64_t rel_table(const py::array& t, const char* name, const AttentionArgs& a,
                  int64_t (&stride)[4]) {
  if (t.ndim() != 4)
    fail(std::string(name) + " must be 4-D, got " + std::to_string(t.ndim()) + "-D");
  const int64_t width = t.shape(3);
  require_shape4(t, name, a.batch, a.heads_q, a.len_q, width, " (B, Hq, Lq of q)");
  for (int i = 0; i < 4; ++i) stride[i] = bind::element_stride(t, i, kOp, name);
  return width;
}

}  // namespace

void bind_attention(py::module_& m) {
  m.def("attention", [](const py::object& q_obj, const py::object& k_obj, const py::object& v_obj,
                        const py::object& out_obj, const py::object& mask, bool causal,
                        int64_t window, double scale, const py::object& weights,
                        const py::object& rel_h_obj, const py::object& rel_w_obj) {
    const py::array q = bind::ndarray(q_obj, kOp, "q"), k = bind::ndarray(k_obj, kOp, "k"),
                    v = bind::ndarray(v_obj, kOp, "v"), out = bind::ndarray(out_obj, kOp, "out");
    AttentionArgs a{};
    a.q = tensor4(q, "q", false);
    a.k = tensor4(k, "k", false);
    a.v = tensor4(v, "v", false);
    a.out = tensor4(out, "out", true);
    a.batch = q.shape(0);
    a.heads_q = q.shape(1);
    a.len_q = q.shape(2);
    a.dim = q.shape(3);
    a.heads_kv = k.shape(1);
    a.len_k = k.shape(2);
    a.dim_v = v.shape(3);
    require_shape4(k, "k", a.batch, a.heads_kv, a.len_k, a.dim, " (batch and D of q)");
    require_shape4(v, "v", a.batch, a.heads_kv, a.len_k, a.dim_v, " (B, Hkv, Lk of k)");
    require_shape4(out, "out", a.batch, a.heads_q, a.len_q, a.dim_v, "");
    bind::require_no_zero_strides(out, kOp, "out");
    // out may be q itself (the kernels read each query before writing its row), nothing else
    bind::require_separate(out, q, kOp, "out", "q", true);
    bind::require_separate(out, k, kOp, "out", "k", false);
    bind::require_separate(out, v, kOp, "out", "v", false);
    if (a.heads_kv == 0 ? a.heads_q != 0 : a.heads_q % a.heads_kv != 0)
      fail("Hq = " + std::to_string(a.heads_q) + " is not a multiple of Hkv = " +
           std::to_string(a.heads_kv));
    if (window < 0) fail("window must be >= 1 (0 here means none), got " + std::to_string(window));
    a.causal = causal;
    a.window = window;
    a.scale = bind::float32_scalar(scale, kOp, "scale", -HUGE_VAL);
    a.mask_kind = AttentionMask::none;
    a.mask = nullptr;
    py::object mask_array;  // null without a mask
    if (!mask.is_none()) {
      const py::array mk = bind::ndarray(mask, kOp, "mask");
      mask_array = mk;
      py::ssize_t item;
      if (bind::is_bool(mk.dtype())) {
        a.mask_kind = AttentionMask::boolean;
        item = 1;
      } else if (bind::is_float32(mk.dtype())) {
        a.mask_kind = AttentionMask::additive;
        item = 4;
      } else {
        throw py::type_error("attention: mask must be bool or float32, got " +
                             std::string(py::str(mk.dtype())));
      }
      if (mk.ndim() != 4) fail("mask must be 4-D (broadcast view), got " + std::to_string(mk.ndim()) + "-D");
      require_shape4(mk, "mask", a.batch, a.heads_q, a.len_q, a.len_k, "");
      for (int i = 0; i < 4; ++i) {
        if (mk.strides(i) % item != 0) fail("mask strides must be whole elements");
        a.mask_stride[i] = mk.strides(i) / item;
      }
      bind::require_separate(out, mk, kOp, "out", "mask", false);
      a.mask = mk.data();
    }
    py::object rel_arrays[2];  // null without a relative-position bias
    if (rel_h_obj.is_none() != rel_w_obj.is_none())
      fail("rel_h and rel_w must both be given or both be None");
    if (!rel_h_obj.is_none()) {
      const py::array rh = bind::float32_array(rel_h_obj, kOp, "rel_h");
      const py::array rw = bind::float32_array(rel_w_obj, kOp, "rel_w");
      AttentionRelPos& rel = a.rel;
      rel.kh = rel_table(rh, "rel_h", a, rel.h_stride);
      rel.kw = rel_table(rw, "rel_w", a, rel.w_stride);
      // kh * kw == Lk without forming the product (broadcast views may have huge widths)
      const bool grid = rel.kw == 0 ? a.len_k == 0
                                    : (a.len_k % rel.kw == 0 && a.len_k / rel.kw == rel.kh);
      if (!grid)
        fail("rel_h and rel_w have widths Kh = " + std::to_string(rel.kh) + " and Kw = " +
             std::to_string(rel.kw) + ", expected Kh * Kw == Lk = " + std::to_string(a.len_k));
      bind::require_separate(out, rh, kOp, "out", "rel_h", false);
      bind::require_separate(out, rw, kOp, "out", "rel_w", false);
      rel.h_table = static_cast<const float*>(rh.data());
      rel.w_table = static_cast<const float*>(rw.data());
      rel_arrays[0] = rh;
      rel_arrays[1] = rw;
    }
    const AttentionKernels& kt = kernels<AttentionKernels>();
    float* w = nullptr;
    if (!weights.is_none()) {
      const py::array wa = bind::float32_array(weights, kOp, "weights");
      bind::require_writable(wa, kOp, "weights");
      bind::require_c_contiguous(wa, kOp, "weights");
      if (wa.ndim() != 4) fail("weights must be 4-D, got " + std::to_string(wa.ndim()) + "-D");
      require_shape4(wa, "weights", a.batch, a.heads_q, a.len_q, a.len_k, "");
      const std::pair<const py::array*, const char*> inputs[] = {
          {&q, "q"}, {&k, "k"}, {&v, "v"}, {&out, "out"}};
      for (const auto& [x, name] : inputs)
        bind::require_separate(wa, *x, kOp, "weights", name, false);
      if (mask_array)
        bind::require_separate(wa, py::reinterpret_borrow<py::array>(mask_array), kOp, "weights",
                               "mask", false);
      const char* rel_names[2] = {"rel_h", "rel_w"};
      for (int i = 0; i < 2; ++i)
        if (rel_arrays[i])
          bind::require_separate(wa, py::reinterpret_borrow<py::array>(rel_arrays[i]), kOp,
                                 "weights", rel_names[i], false);
      w = bind::mutable_floats(wa);
    }
    py::gil_scoped_release release;
    if (w) kt.weights(a, w);  // first: out may be q itself (in place)
    kt.forward(a);
  }, py::arg("q"), py::arg("k"), py::arg("v"), py::arg("out"), py::arg("mask"),
     py::arg("causal").noconvert(), py::arg("window").noconvert(), py::arg("scale"),
     py::arg("weights"), py::arg("rel_h") = py::none(), py::arg("rel_w") = py::none(),
     "Flash attention of 4-D float32 q (B,Hq,Lq,D), k (B,Hkv,Lk,D), v (B,Hkv,Lk,Dv) into out; "
     "mask None or a (B,Hq,Lq,Lk) bool/float32 view; window 0 = none; scale finite in float32; "
     "weights None or a C-contiguous (B,Hq,Lq,Lk) float32 array receiving the probabilities; "
     "rel_h (B,Hq,Lq,Kh) and rel_w (B,Hq,Lq,Kw) float32 views with Kh*Kw = Lk, or both None: "
     "score (i, j) += rel_h[.., i, j / Kw] + rel_w[.., i, j % Kw].");
}

}  // namespace fastattn
