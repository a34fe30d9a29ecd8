// KV cache kernels. The Python class fastattn.KVCache owns the storage and validates with
// user-facing messages before anything is written; these checks are the second line, so that a
// direct call into fastattn._core can never read or write outside the arrays.
// The stores' element type is the `dtype` argument ("float32", "float16", "bfloat16"): float32
// stores are float32 arrays, 16-bit ones uint16 arrays of bit patterns (a mismatch is a
// TypeError: a float32 array read as uint16 would be read past its half).
#include "kernels/kv_cache.h"

#include <cmath>
#include <limits>
#include <string>

#include "bindings/common.h"

namespace fastattn {

namespace py = pybind11;

namespace {

KVDtype kv_dtype(const std::string& name, const char* op) {
  if (name == "float32") return KVDtype::float32;
  if (name == "float16") return KVDtype::float16;
  if (name == "bfloat16") return KVDtype::bfloat16;
  throw py::value_error(std::string(op) + ": dtype must be 'float32', 'float16' or 'bfloat16', "
                        "got '" + name + "'");
}

// A C-contiguous array of exactly `ndim` dimensions, float32 or (16-bit dtypes) uint16.
void require_dense(const py::array& a, const char* op, const char* name, py::ssize_t ndim,
                   bool writable, KVDtype dtype = KVDtype::float32) {
  if (dtype == KVDtype::float32) {
    bind::require_float32(a, op, name);
  } else if (!bind::has_dtype(a.dtype(), 'u', 2)) {
    throw py::type_error(std::string(op) + ": " + name + " must be uint16 (native byte order: " +
                         (dtype == KVDtype::float16 ? "float16" : "bfloat16") +
                         " bit patterns), got " + std::string(py::str(a.dtype())));
  }
  if (writable) bind::require_writable(a, op, name);
  bind::require_c_contiguous(a, op, name);
  bind::require_ndim(a, ndim, op, name);
}

// The two stores (layers, B, Hkv, S, D), same shape; returns the layer's offset in elements.
int64_t layer_offset(const py::array& ks, const py::array& vs, int64_t layer, const char* op,
                     KVDtype dtype) {
  require_dense(ks, op, "kstore", 5, true, dtype);
  require_dense(vs, op, "vstore", 5, true, dtype);
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

// src -> out: 16-bit `dtype` bit patterns to float32 (to_float32), or float32 to 16 bits.
void convert(const py::object& src_obj, const py::object& out_obj, const std::string& name,
             const char* op, bool to_float32) {
  const KVDtype dtype = kv_dtype(name, op);
  if (dtype == KVDtype::float32)
    throw py::value_error(std::string(op) + ": dtype must be 'float16' or 'bfloat16'");
  const py::array src = bind::ndarray(src_obj, op, "src");
  const py::array out = bind::ndarray(out_obj, op, "out");
  const KVDtype src_type = to_float32 ? dtype : KVDtype::float32;
  require_dense(src, op, "src", src.ndim(), false, src_type);
  require_dense(out, op, "out", src.ndim(), true, to_float32 ? KVDtype::float32 : dtype);
  bind::require_same_shape(src, out, op, "src", "out");
  bind::require_separate(out, src, op, "out", "src", false);
  const void* sp = src.data();
  void* dp = const_cast<void*>(out.data());
  const int64_t n = src.size();
  const KVCacheKernels& k = kernels<KVCacheKernels>();
  py::gil_scoped_release release;
  if (to_float32)
    k.to_float32(static_cast<const uint16_t*>(sp), static_cast<float*>(dp), n, dtype);
  else
    k.from_float32(static_cast<const float*>(sp), static_cast<uint16_t*>(dp), n, dtype);
}

}  // namespace

void bind_kv_cache(py::module_& m) {
  m.def("kv_append", [](const py::object& ks_obj, const py::object& vs_obj, int64_t layer,
                        const py::object& k_obj, const py::object& v_obj, int64_t start,
                        const std::string& dtype_name) {
    const char* op = "KVCache.append";
    const KVDtype dtype = kv_dtype(dtype_name, op);
    const py::array ks = bind::ndarray(ks_obj, op, "kstore");
    const py::array vs = bind::ndarray(vs_obj, op, "vstore");
    const py::array k = bind::ndarray(k_obj, op, "k"), v = bind::ndarray(v_obj, op, "v");
    const int64_t off = layer_offset(ks, vs, layer, op, dtype);
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
    const size_t elem = ks.itemsize();  // 4 or 2: checked against dtype above
    char* kp = static_cast<char*>(const_cast<void*>(ks.data())) + off * elem;
    char* vp = static_cast<char*>(const_cast<void*>(vs.data())) + off * elem;
    const float* kin = static_cast<const float*>(k.data());
    const float* vin = static_cast<const float*>(v.data());
    const auto fn = kernels<KVCacheKernels>().append;
    py::gil_scoped_release release;
    fn(kp, vp, kin, vin, B, H, S, D, T, start, dtype);
  }, py::arg("kstore"), py::arg("vstore"), py::arg("layer").noconvert(), py::arg("k"),
     py::arg("v"), py::arg("start").noconvert(), py::arg("dtype") = "float32");

  m.def("kv_attend", [](const py::object& ks_obj, const py::object& vs_obj, int64_t layer,
                        const py::object& q_obj, const py::object& out_obj, int64_t length,
                        int64_t window, double scale, const std::string& dtype_name) {
    const char* op = "KVCache.attend";
    const KVDtype dtype = kv_dtype(dtype_name, op);
    const py::array ks = bind::ndarray(ks_obj, op, "kstore");
    const py::array vs = bind::ndarray(vs_obj, op, "vstore");
    const py::array q = bind::ndarray(q_obj, op, "q"), out = bind::ndarray(out_obj, op, "out");
    const int64_t off = layer_offset(ks, vs, layer, op, dtype);
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
    const size_t elem = ks.itemsize();
    const char* kp = static_cast<const char*>(ks.data()) + off * elem;
    const char* vp = static_cast<const char*>(vs.data()) + off * elem;
    const float* qp = static_cast<const float*>(q.data());
    float* yp = bind::mutable_floats(out);
    const auto fn = kernels<KVCacheKernels>().attend;
    py::gil_scoped_release release;
    fn(kp, vp, qp, yp, B, q.shape(1), Hkv, S, D, T, length, window, sc, dtype);
  }, py::arg("kstore"), py::arg("vstore"), py::arg("layer").noconvert(), py::arg("q"),
     py::arg("out"), py::arg("length").noconvert(), py::arg("window").noconvert(),
     py::arg("scale"), py::arg("dtype") = "float32");

  // 16-bit storage <-> float32, elementwise over C-contiguous arrays of the same shape: what
  // KVCache.keys() / values() return, and the rounding of a chunk's new keys (attend_new).
  m.def("kv_to_float32", [](const py::object& src, const py::object& out,
                            const std::string& dtype) {
    convert(src, out, dtype, "KVCache.to_float32", true);
  }, py::arg("src"), py::arg("out"), py::arg("dtype"));
  m.def("kv_from_float32", [](const py::object& src, const py::object& out,
                              const std::string& dtype) {
    convert(src, out, dtype, "KVCache.from_float32", false);
  }, py::arg("src"), py::arg("out"), py::arg("dtype"));
}

}  // namespace fastattn
