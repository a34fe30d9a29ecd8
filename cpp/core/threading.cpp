#include "core/threading.h"

#include <atomic>
#include <stdexcept>
#include <string>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace fastattn {
namespace {
int initial_threads() {
#if defined(_OPENMP)
  // omp_get_max_threads() honours OMP_NUM_THREADS and otherwise gives the core count.
  const int n = omp_get_max_threads();
  return n > 0 ? n : 1;
#else
  return 1;
#endif
}
std::atomic<int>& slot() {
  static std::atomic<int> n{initial_threads()};
  return n;
}
}  // namespace

bool have_openmp() {
#if defined(_OPENMP)
  return true;
#else
  return false;
#endif
}

int num_threads() {
#if defined(_OPENMP)
  return slot().load(std::memory_order_relaxed);
#else
  return 1;
#endif
}

void set_num_threads(int64_t n) {
  if (n < 1 || n > kMaxThreads)
    throw std::invalid_argument("set_num_threads: n must be an int in [1, " +
                                std::to_string(kMaxThreads) + "], got " + std::to_string(n));
  slot().store(static_cast<int>(n), std::memory_order_relaxed);
}

}  // namespace fastattn
