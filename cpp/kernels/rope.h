// Rotary position embedding (RoPE) over x (rows, D): each row is one (batch, head, position).
//   half style        (GPT-NeoX, Hugging Face rotate_half), pairs (i, i + rot/2), i < rot/2:
//     y_i         = x_i c_i - x_{i+rot/2} s_i
//     y_{i+rot/2} = x_{i+rot/2} c_i + x_i s_i
//   interleaved style (GPT-J, RoFormer), pairs (2i, 2i+1):
//     y_{2i}   = x_{2i} c_i - x_{2i+1} s_i
//     y_{2i+1} = x_{2i+1} c_i + x_{2i} s_i
// with c_i = a cos(p theta_i), s_i = a sin(p theta_i) (a: the scaling's attention factor)
// taken from precomputed float32 tables; features [rot, D) pass through unchanged.
#pragma once

#include <cstdint>

#include "core/isa.h"

namespace fastattn {

struct RopeKernels {
  // x, y: (batch, heads, L, D) C-contiguous; y may equal x (in place).
  // cos, sin: one table row of `width` floats per (table batch, position); row of (b, l) at
  // (b * table_bstride + l) * width (table_bstride 0: all batch rows share the positions).
  //   half style:        width = rot / 2, entry i = c_i (resp. s_i)
  //   interleaved style: width = rot, entries (c_i, c_i) and (-s_i, s_i) for the pair i
  void (*rope)(const float* x, float* y, int64_t batch, int64_t heads, int64_t L, int64_t D,
               const float* cos, const float* sin, int64_t table_bstride, int64_t rot,
               bool interleaved) = nullptr;
};
FASTATTN_DECLARE_KERNEL_TABLE(RopeKernels)

}  // namespace fastattn
