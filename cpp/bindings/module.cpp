// fastattn._core: the private extension. Users import `fastattn`; the Python wrappers in
// fastattn.ops own validation messages, out= handling and docstrings.
#include "bindings/common.h"

PYBIND11_MODULE(_core, m) {
  m.doc() = "fastattn private extension: SIMD + OpenMP kernels (use the fastattn package)";
  fastattn::bind_runtime(m);
  fastattn::bind_softmax(m);
  fastattn::bind_norm(m);
  fastattn::bind_activation(m);
  fastattn::bind_matmul(m);
  fastattn::bind_matmul_lowp(m);
  fastattn::bind_attention(m);
  fastattn::bind_rope(m);
  fastattn::bind_kv_cache(m);
  fastattn::bind_resample(m);
  fastattn::bind_conv(m);
}
