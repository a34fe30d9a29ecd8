// Element-wise activations: loops over contiguous memory, split into contiguous chunks across
// threads (each element's value does not depend on the chunking). Outputs larger than the
// cache are written with streaming stores (core/row_writer.h), unless computed in place (then
// the line is already being read, and there is no read-for-ownership to save).
#include "kernels/activation.h"

#include "core/parallel.h"
#include "core/row_writer.h"
#include "core/util.h"
#include "kernels/activation_math.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {
namespace {

template <Activation kind>
void apply_kind(const float* x, float* y, int64_t n) {
  const bool streaming = should_stream(n) && x != y;
  parallel_for(n, kGrainElementwise, [&](int64_t b, int64_t e) {
    write_row(y + b, e - b, streaming, [&](int64_t i, int cnt) {
      return activate<kind>(load_n(x + b + i, cnt));
    });
    if (streaming) stream_fence();
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
  const bool streaming = should_stream(n) && y != gate && y != up;
  parallel_for(n, kGrainElementwise, [&](int64_t b, int64_t e) {
    write_row(y + b, e - b, streaming, [&](int64_t i, int cnt) {
      return silu(load_n(gate + b + i, cnt)) * load_n(up + b + i, cnt);
    });
    if (streaming) stream_fence();
  });
}

}  // namespace

void register_kernels(ActivationKernels& t, Tag) {
  t.apply = apply;
  t.swiglu = swiglu;
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn
