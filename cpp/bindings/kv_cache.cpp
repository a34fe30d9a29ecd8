// KV cache kernels. The Python class fastattn.KVCache owns the storage and validates with
// user-facing messages before anything is written; these checks are the second line, so that a
// direct call into fastattn._core can never read or write outside the arrays.
#include "kernels/kv_cache.h"

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
  if (a.ndim() != ndim)
    throw py::value_error(std::string(op) + ": " + name + " must be " + std::to_string(ndim) +
                          "-D, got " + std::to_string(a.ndim()) + "-D");
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
  m.def("kv_append", [](const py::array& ks, const py::array& vs, int64_t layer,
                        const py::array& k, const py::array& v, int64_t start) {
    const char* op = "KVCache.append";
    const int64_t off = layer_offset(ks, vs, layer, op);
    require_dense(k, op, "k", 4, false);
    require_dense(v, op, "v", 4, false);
    const int64_t B = ks.shape(1), H = ks.shape(2), S = ks.shape(3), D = ks.shape(4);
    require_shape4(k, op, "k", B, H, D);
    bind::require_same_shape(k, v, op, "k", "v");
    const int64_t T = k.shape(2);
    if (T < 1 || T > S || start < 0)
      throw py::value_error(std::string(op) + ": need 1 <= T <= " + std::to_string(S) +
                            " and start >= 0, got T=" + std::to_string(T));
    float* kp = bind::mutable_floats(ks) + off;
    float* vp = bind::mutable_floats(vs) + off;
    const float* kin = static_cast<const float*>(k.data());
    const float* vin = static_cast<const float*>(v.data());
    const auto fn = kernels<KVCacheKernels>().append;
    py::gil_scoped_release release;
    fn(kp, vp, kin, vin, B, H, S, D, T, start);
  }, py::arg("kstore"), py::arg("vstore"), py::arg("layer"), py::arg("k"), py::arg("v"),
     py::arg("start"));

  m.def("kv_attend", [](const py::array& ks, const py::array& vs, int64_t layer,
                        const py::array& q, const py::array& out, int64_t length,
                        int64_t window, float scale) {
    const char* op = "KVCache.attend";
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
    const float* kp = static_cast<const float*>(ks.data()) + off;
    const float* vp = static_cast<const float*>(vs.data()) + off;
    const float* qp = static_cast<const float*>(q.data());
    float* yp = bind::mutable_floats(out);
    const auto fn = kernels<KVCacheKernels>().attend;
    py::gil_scoped_release release;
    fn(kp, vp, qp, yp, B, q.shape(1), Hkv, S, D, T, length, window, scale);
  }, py::arg("kstore"), py::arg("vstore"), py::arg("layer"), py::arg("q"), py::arg("out"),
     py::arg("length"), py::arg("window"), py::arg("scale"));
}

}  // namespace fastattn
