// Element-wise activations: streaming loops over contiguous memory, split into contiguous
// chunks across threads (each element's value does not depend on the chunking).
#include "kernels/activation.h"

#include "core/parallel.h"
#include "kernels/activation_math.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {
namespace {

constexpr int64_t kGrain = 1 << 15;  // elements per thread, at least

template <Activation kind>
void apply_kind(const float* x, float* y, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    constexpr int W = Vec::size;
    int64_t i = b;
    for (; i + 2 * W <= e; i += 2 * W) {
      activate<kind>(Vec::load(x + i)).store(y + i);
      activate<kind>(Vec::load(x + i + W)).store(y + i + W);
    }
    for (; i < e; i += W) {
      const int cnt = e - i < W ? static_cast<int>(e - i) : W;
      store_n(y + i, activate<kind>(load_n(x + i, cnt)), cnt);
    }
  });
}

void apply(Activation kind, const float* x, float* y, int64_t n) {
  switch (kind) {
    case Activation::relu: return apply_kind<Activation::relu>(x, y, n);
    case Activation::gelu: return apply_kind<Activation::gelu>(x, y, n);
    case Activation::gelu_tanh: return apply_kind<Activation::gelu_tanh>(x, y, n);
    case Activation::silu: return apply_kind<Activation::silu>(x, y, n);
    case Activation::none: return apply_kind<Activation::none>(x, y, n);
  }
}

void swiglu(const float* gate, const float* up, float* y, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    constexpr int W = Vec::size;
    for (int64_t i = b; i < e; i += W) {
      const int cnt = e - i < W ? static_cast<int>(e - i) : W;
      store_n(y + i, silu(load_n(gate + i, cnt)) * load_n(up + i, cnt), cnt);
    }
  });
}

}  // namespace

void register_kernels(ActivationKernels& t, Tag) {
  t.apply = apply;
  t.swiglu = swiglu;
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn
