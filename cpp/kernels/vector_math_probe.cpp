#include "kernels/vector_math_probe.h"

#include "core/vec_math.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {
namespace {

template <Vec (*F)(Vec)>
void map(const float* x, float* y, int64_t n) {
  for_each_vec(n, [&](int64_t i, int cnt) { store_n(y + i, F(load_n(x + i, cnt)), cnt); });
}

}  // namespace

void register_kernels(VectorMathKernels& t, Tag) {
  t.exp = map<exp>;
  t.erfc = map<erfc_nonnegative>;
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn
