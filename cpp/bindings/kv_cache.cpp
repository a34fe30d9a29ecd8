// KV cache kernels. The Python class fastattn.KVCache owns the storage and validates with
// user-facing messages before anything is written; these checks are the second line, so that a
// direct call into fastattn._core can never read or write outside the arrays.
#include "kernels/kv_cache.h"

#include <cmath>
#include <limits>

#include "bindings/common.h"

namespace fastattn {

namespace py = pybind11;

namespace {

// A C-contiguous float32 array of exactly `ndim` dimensions.
void require_dense(const py::array& a, const char* op, const char* name, py::ssize_t ndim,
                   bool writable) {
  bind::require_float32(a, op, name);
  if (writable) bind::require_writable(a, op, name);
  bind::require_c_contiguous(a, op, name);
  bind::require_ndim(a, ndim, op, name);
}

// The two stores (layers, B, Hkv, S, D), same shape; returns the layer's offset in floats.
int64_t layer_offset(const py::array& ks, const py::array& vs, int64_t layer, const char* op) {
  require_dense(ks, op, "kstore", 5, true);
  require_dense(vs, op, "vstore", 5, true);
  bind::require_same_shape(ks, vs, op, "kstore", "vstore");
  if (layer < 0 || layer >= ks.shape(0))
    throw py::value_error(std::string(op) + ": layer " + std::to_string(layer) +
                          " is out of range for " + std::to_string(ks.shape(0)) + " layers");
  return layer * (ks.size() / ks.shape(0));
}

void require_shape4(const py::array& a, const char* op, const char* name, int64_t d0, int64_t d1,
                    int64_t d3) {
  if (a.shape(0) != d0 || a.shape(1) != d1 || a.shape(3) != d3)
    throw py::value_error(std::string(op) + ": " + name + " has shape " + bind::shape_str(a) +
                          ", expected (" + std::to_string(d0) + ", " + std::to_string(d1) +
                          ", T, " + std::to_string(d3) + ")");
}

}  // namespace

void bind_kv_cache(py::module_& m) {
  m.def("kv_append", [](const py::object& ks_obj, const py::object& vs_obj, int64_t layer,
                        const py::object& k_obj, const py::object& v_obj, int64_t start) {
    const char* op = "KVCache.append";
    const py::array ks = bind::ndarray(ks_obj, op, "kstore");
    const py::array vs = bind::ndarray(vs_obj, op, "vstore");
    const py::array k = bind::ndarray(k_obj, op, "k"), v = bind::ndarray(v_obj, op, "v");
    const int64_t off = layer_offset(ks, vs, layer, op);
    require_dense(k, op, "k", 4, false);
    require_dense(v, op, "v", 4, false);
    const int64_t B = ks.shape(1), H = ks.shape(2), S = ks.shape(3), D = ks.shape(4);
    require_shape4(k, op, "k", B, H, D);
    bind::require_same_shape(k, v, op, "k", "v");
    const int64_t T = k.shape(2);
    // start + T - 1 is the last position written: it must fit int64 (slot = position mod S)
    if (T < 1 || T > S || start < 0 || start > std::numeric_limits<int64_t>::max() - T)
      throw py::value_error(std::string(op) + ": need 1 <= T <= " + std::to_string(S) +
                            " and 0 <= start <= 2**63 - 1 - T, got T=" + std::to_string(T) +
                            ", start=" + std::to_string(start));
    for (const py::array* store : {&ks, &vs}) {
      const char* name = store == &ks ? "kstore" : "vstore";
      bind::require_separate(*store, k, op, name, "k", false);
      bind::require_separate(*store, v, op, name, "v", false);
    }
    float* kp = bind::mutable_floats(ks) + off;
    float* vp = bind::mutable_floats(vs) + off;
    const float* kin = static_cast<const float*>(k.data());
    const float* vin = static_cast<const float*>(v.data());
    const auto fn = kernels<KVCacheKernels>().append;
    py::gil_scoped_release release;
    fn(kp, vp, kin, vin, B, H, S, D, T, start);
  }, py::arg("kstore"), py::arg("vstore"), py::arg("layer").noconvert(), py::arg("k"),
     py::arg("v"), py::arg("start").noconvert());

  m.def("kv_attend", [](const py::object& ks_obj, const py::object& vs_obj, int64_t layer,
                        const py::object& q_obj, const py::object& out_obj, int64_t length,
                        int64_t window, double scale) {
    const char* op = "KVCache.attend";
    const py::array ks = bind::ndarray(ks_obj, op, "kstore");
    const py::array vs = bind::ndarray(vs_obj, op, "vstore");
    const py::array q = bind::ndarray(q_obj, op, "q"), out = bind::ndarray(out_obj, op, "out");
    const int64_t off = layer_offset(ks, vs, layer, op);
    require_dense(q, op, "q", 4, false);
    require_dense(out, op, "out", 4, true);
    bind::require_same_shape(q, out, op, "q", "out");
    const int64_t B = ks.shape(1), Hkv = ks.shape(2), S = ks.shape(3), D = ks.shape(4);
    if (q.shape(0) != B || q.shape(3) != D || Hkv == 0 || q.shape(1) % Hkv != 0)
      throw py::value_error(std::string(op) + ": q has shape " + bind::shape_str(q) +
                            ", expected (" + std::to_string(B) + ", a multiple of " +
                            std::to_string(Hkv) + ", T, " + std::to_string(D) + ")");
    const int64_t T = q.shape(2);
    // A window of `length` or more keys excludes nothing (kernels/attention/key_rule.h), and
    // comparing window <= S - T + 1 instead of T + window - 1 <= S cannot overflow.
    const bool windowed = window > 0 && window < length;
    const bool stored = windowed ? window <= S - T + 1 : length <= S;
    if (T < 1 || T > length || window < 0 || !stored)
      throw py::value_error(std::string(op) + ": T=" + std::to_string(T) + " queries over " +
                            std::to_string(length) + " tokens, window " +
                            std::to_string(window) + " and " + std::to_string(S) +
                            " slots: some visible key is not stored");
    const float sc = bind::float32_scalar(scale, op, "scale", -HUGE_VAL);
    // out may be q itself (the decode kernel reads every query before writing), nothing else
    bind::require_separate(out, q, op, "out", "q", true);
    bind::require_separate(out, ks, op, "out", "kstore", false);
    bind::require_separate(out, vs, op, "out", "vstore", false);
    const float* kp = static_cast<const float*>(ks.data()) + off;
    const float* vp = static_cast<const float*>(vs.data()) + off;
    const float* qp = static_cast<const float*>(q.data());
    float* yp = bind::mutable_floats(out);
    const auto fn = kernels<KVCacheKernels>().attend;
    py::gil_scoped_release release;
    fn(kp, vp, qp, yp, B, q.shape(1), Hkv, S, D, T, length, window, sc);
  }, py::arg("kstore"), py::arg("vstore"), py::arg("layer").noconvert(), py::arg("q"),
     py::arg("out"), py::arg("length").noconvert(), py::arg("window").noconvert(),
     py::arg("scale"));
}

}  // namespace fastattn
