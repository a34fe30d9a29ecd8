// The convolution kernel table: path choice and per-thread scratch.
//   conv2d: depthwise (one input channel per group) -> depthwise.cpp's direct loop;
//           everything else -> conv2d.cpp's implicit-im2col GEMM on matmul's micro-kernel.
//   conv_transpose2d -> conv_transpose2d.cpp.
#include "core/memory.h"
#include "kernels/conv/internal.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {

float* conv_scratch(int slot, std::size_t count) {
  static thread_local AlignedFloats buffers[3];
  buffers[slot].reserve(count);
  return buffers[slot].data();
}

namespace {

void conv2d(const Conv2dArgs& a) {
  if (a.N == 0 || a.Cout == 0 || a.OH == 0 || a.OW == 0) return;
  if (a.C / a.groups == 1 && a.C > 0) return conv2d_depthwise(a);
  conv2d_gemm(a);
}

}  // namespace

void register_kernels(ConvKernels& t, Tag) {
  t.conv2d = conv2d;
  t.conv_transpose2d = conv_transpose2d;
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn
