// Helpers shared by the convolution kernel files (conv2d.cpp, conv_transpose2d.cpp,
// depthwise.cpp) of one ISA path.
#pragma once

#ifndef FASTATTN_ISA_NAMESPACE
#error "kernels/conv/internal.h is for kernel translation units (compiled per ISA)"
#endif

#include <cstddef>
#include <cstdint>

#include "core/threading.h"
#include "core/util.h"
#include "kernels/conv/conv.h"
#include "kernels/matmul/microkernel.h"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {

// Per-thread scratch `slot` (0: packed weights, read by every thread of the call that made
// them; 1: a thread's B panels or row accumulator; 2: conv_transpose2d's columns), grown on
// demand and kept for the thread's life.
float* conv_scratch(int slot, std::size_t count);

// Below ~2^20 multiply-adds (~25 us on one core) waking a second thread costs more than it
// saves (matmul's measured threshold, the same micro-kernel).
inline int conv_threads(double multiply_adds) {
  constexpr double kParallelMultiplyAdds = 1048576.0;
  return multiply_adds < kParallelMultiplyAdds ? 1 : num_threads();
}

// f(item, buf) for item in [0, n), handed out dynamically to nt threads; buf is the calling
// thread's scratch slot 1 of `floats` floats. Who computes an item never changes its bits.
template <class F>
void for_each_item(int64_t n, int nt, std::size_t floats, const F& f) {
  if (n <= 0) return;
  if (nt > n) nt = static_cast<int>(n);
  if (nt <= 1) {
    float* buf = conv_scratch(1, floats);
    for (int64_t i = 0; i < n; ++i) f(i, buf);
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel num_threads(nt)
  {
    float* buf = conv_scratch(1, floats);
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < n; ++i) f(i, buf);
  }
#else
  float* buf = conv_scratch(1, floats);
  for (int64_t i = 0; i < n; ++i) f(i, buf);
#endif
}

// y = act(y + bias) + residual over cnt lanes (bias a broadcast row constant, may be null
// when has_bias is false; residual may be null).
inline Vec conv_finish(Vec x, bool has_bias, Vec bias, Activation act, const float* residual,
                       int cnt) {
  if (has_bias) x = x + bias;
  if (act != Activation::none) x = apply_activation(act, x);
  if (residual) x = x + load_n(residual, cnt);
  return x;
}

// conv2d through the GEMM driver (gemm_driver.h) with an im2col packer (im2col.h).
void conv2d_gemm(const Conv2dArgs& a);
// The depthwise path of conv2d (C / groups == 1): a direct loop, vectorised along output rows.
void conv2d_depthwise(const Conv2dArgs& a);
// conv_transpose2d: a GEMM into columns, then their deterministic scatter-add (col2im).
void conv_transpose2d(const ConvTranspose2dArgs& a);

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn
