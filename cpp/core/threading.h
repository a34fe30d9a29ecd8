// Process-wide thread count for every kernel (OpenMP when compiled in, else 1).
//
// Kernels never use omp_set_num_threads (a per-calling-thread setting): they read this one
// value and pass it as num_threads(...) so every Python thread sees the same setting.
#pragma once

#include <cstdint>

namespace fastattn {

bool have_openmp();
// Threads kernels may use; starts at OMP_NUM_THREADS or the core count (1 without OpenMP).
int num_threads();
// 1 <= n <= kMaxThreads (std::invalid_argument otherwise); without OpenMP the value is kept
// for get but kernels still run on one thread.
void set_num_threads(int64_t n);
// More threads than any CPU we run on has; a larger team would only ask OpenMP to create
// thousands of threads (which aborts the process when the OS refuses).
constexpr int64_t kMaxThreads = 1024;

}  // namespace fastattn
