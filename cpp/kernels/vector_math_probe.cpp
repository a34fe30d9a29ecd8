#include "kernels/vector_math_probe.h"

#include "core/vec_math.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {
namespace {

template <Vec (*F)(Vec)>
void map(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += Vec::size) {
    const int cnt = n - i < Vec::size ? static_cast<int>(n - i) : Vec::size;
    store_n(y + i, F(load_n(x + i, cnt)), cnt);
  }
}

}  // namespace

void register_kernels(VectorMathKernels& t, Tag) {
  t.exp = map<exp>;
  t.erfc = map<erfc_nonnegative>;
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn
