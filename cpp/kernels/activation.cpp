// Element-wise activations: loops over contiguous memory, split into contiguous chunks across
// threads (each element's value does not depend on the chunking). Outputs larger than the
// cache are written with streaming stores (core/row_writer.h), unless computed in place (then
// the line is already being read, and there is no read-for-ownership to save).
// The exact GELU runs its bulk kGeluInterleave vectors at a time (VecN, core/vec_math.h): one
// Vec at a time its ~110-cycle dependency chain leaves the FMA ports two-thirds idle. Every
// lane goes through the same operations either way, so the bits do not depend on the blocking.
#include "kernels/activation.h"

#include <algorithm>
#include <cstdint>

#include "core/parallel.h"
#include "core/row_writer.h"
#include "core/util.h"
#include "kernels/activation_math.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {
namespace {

// Chains in flight: enough to keep both FMA ports busy through the ~4-cycle latencies. AVX-512
// (32 registers) holds 8 chains and its constants (0.49 ns per element against 0.52 at 4);
// AVX2 (16) spills at 8 and runs best at 4 (0.65 against 0.69 ns); baseline takes 4 (a block
// must be whole 64-byte lines to stream). Single-thread, 1M floats, on the AVX-512 host.
constexpr int kGeluInterleave = Vec::size == 16 ? 8 : 4;

// gelu over [b, e) in whole blocks of kGeluInterleave vectors; returns where it stopped (the
// caller's write_row does the rest). Streaming as write_row does it: ordinary stores up to the
// first 64-byte line boundary, then non-temporal ones (a block is a whole number of lines).
int64_t gelu_blocks(const float* x, float* y, int64_t b, int64_t e, bool streaming) {
  using Block = VecN<kGeluInterleave>;
  constexpr int64_t B = kGeluInterleave * Vec::size;
  constexpr uintptr_t kLine = 64;
  static_assert(B * sizeof(float) % kLine == 0, "a streamed block must be whole lines");
  int64_t i = b;
  if (!streaming) {
    for (; i + B <= e; i += B) gelu_exact(Block::load(x + i)).store(y + i);
    return i;
  }
  const uintptr_t addr = reinterpret_cast<uintptr_t>(y + b);
  if (addr % sizeof(float) != 0) return b;  // no line alignment reachable: write_row's plain stores
  const int64_t head = std::min<int64_t>(e - b, ((kLine - addr % kLine) % kLine) / sizeof(float));
  for_each_vec(head, [&](int64_t j, int cnt) {
    store_n(y + b + j, gelu_exact(load_n(x + b + j, cnt)), cnt);
  });
  for (i = b + head; i + B <= e; i += B) gelu_exact(Block::load(x + i)).stream(y + i);
  return i;
}

template <Activation kind>
void apply_kind(const float* x, float* y, int64_t n) {
  const bool streaming = should_stream(n) && x != y;
  parallel_for(n, kGrainElementwise, [&](int64_t b, int64_t e) {
    if constexpr (kind == Activation::gelu) b = gelu_blocks(x, y, b, e, streaming);
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
