// Matmul with a low-precision weight: C = epilogue(A @ W), A float32 (M, K) strided, W stored
// in one of the weight formats of docs/weight_formats.md (python/fastattn/weight_formats.py is
// the same table in NumPy):
//   bfloat16 / float16: uint16 bits, (N, K), row n of W^T contiguous along K
//   q8: int8 quants (N, Kp) + float16 scales (N, Kp / 32), w[n, k] = q * d per block of 32
//   q4: bytes (N, Kp / 2), byte i of a block: element i (low nibble), i + 16 (high nibble),
//       q = nibble - 8, + float16 scales (N, Kp / 32)
// Kp = K rounded up to 32; the padding holds zero quants.
//
// Every weight is converted exactly to float32 (bf16 / f16 are subsets of float32; q * d
// with an 8-bit q and an 11-bit d fits float32's 24-bit significand) and the product is a
// float32 FMA chain over k: the float32 matmul of the dequantised weight, with its error bound
// (docs/matmul.md). K is never split across threads: bits independent of the thread count.
#pragma once

#include <cstdint>

#include "core/isa.h"
#include "kernels/matmul/matmul.h"

namespace fastattn {

enum class WeightFormat : int { bfloat16 = 1, float16 = 2, q8 = 3, q4 = 4 };

constexpr int64_t kLowpBlock = 32;  // q8 / q4 block along K

struct LowpMatrix {
  WeightFormat format;
  const void* weight;       // see above; rows of `row_bytes` bytes
  const uint16_t* scales;   // float16 bits (N, Kp / 32), q8 / q4 only
  int64_t K, N;
};

struct LowpKernels {
  void (*matmul)(int64_t M, StridedMatrix a, const LowpMatrix& w, float* c, int64_t ldc,
                 const MatmulEpilogue& ep) = nullptr;
  // The largest M that takes the streaming (GEMV) path; larger M converts panels.
  int64_t (*gemv_max_m)() = nullptr;
};
FASTATTN_DECLARE_KERNEL_TABLE(LowpKernels)

}  // namespace fastattn
