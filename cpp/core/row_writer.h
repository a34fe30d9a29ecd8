// write_row: the last pass of a row kernel, y[i..i+cnt) = value(i, cnt), optionally with
// non-temporal (streaming) stores.
//
// Why: a normal store to memory that is not in cache first reads the line (read-for-ownership),
// so a kernel that reads x and writes y moves 3 bytes per output byte instead of 2. For outputs
// much larger than the cache, streaming stores skip that read (memcpy does the same). For small
// outputs they would be a loss — the next op reads y from cache — so callers stream only when
// the whole output exceeds kStreamingBytes.
#pragma once

#ifndef FASTATTN_ISA_NAMESPACE
#error "core/row_writer.h is for kernel translation units (compiled per ISA)"
#endif

#include <cstdint>

#include "core/util.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {

// Outputs larger than this (about half the L3 of the machines we target) are streamed.
constexpr int64_t kStreamingBytes = int64_t{16} << 20;

inline bool should_stream(int64_t output_floats) {
  return output_floats * static_cast<int64_t>(sizeof(float)) > kStreamingBytes;
}

// Row kernels make several passes over a row that sits in L1; during the passes that compute
// from cache the memory would sit idle until the next row's first pass misses. Hinting the
// next row into L2 (prefetcht1: L1 is busy with this row) from inside such a pass overlaps the
// two. Call with the element index i of the pass (multiples of Vec::size): one hint per 64-byte
// line. A hint never faults; callers pass next = nullptr for the last row of their range.
inline void prefetch_next_row(const float* next, int64_t i) {
  if (next && i % 16 == 0) prefetch<2>(next + i);
}

// value(i, cnt) returns the Vec for elements [i, i + cnt); cnt < Vec::size only at the ends.
// With streaming, only whole 64-byte cache lines are written non-temporally: the head up to the
// first line boundary and the tail after the last one use ordinary stores. (A non-temporal
// store that covers part of a line leaves the memory controller a read-modify-write; with
// short runs at NumPy's 16-byte alignment, e.g. RoPE's 256-byte half rows, that costs more
// than the read-for-ownership it was meant to save.) The caller issues stream_fence() once
// after its last streamed row.
template <class Value>
void write_row(float* y, int64_t n, bool streaming, const Value& value) {
  constexpr int W = Vec::size;
  constexpr uintptr_t kLine = 64;
  constexpr int64_t kLineFloats = kLine / sizeof(float);
  int64_t i = 0;
  const uintptr_t addr = reinterpret_cast<uintptr_t>(y);
  // A float array need not be 4-byte aligned (np.frombuffer at an odd offset); then no head
  // length reaches line alignment, and a misaligned non-temporal store would fault.
  if (streaming && addr % sizeof(float) == 0) {
    int64_t head = static_cast<int64_t>(((kLine - addr % kLine) % kLine) / sizeof(float));
    if (head > n) head = n;
    for (; i + W <= head; i += W) value(i, W).store(y + i);
    if (i < head) value(i, static_cast<int>(head - i)).store_partial(y + i, static_cast<int>(head - i));
    i = head;
    const int64_t body_end = head + (n - head) / kLineFloats * kLineFloats;
    for (; i < body_end; i += W) value(i, W).stream(y + i);
  }
  const int64_t rest = i;
  for_each_vec(n - rest, [&](int64_t j, int cnt) { store_n(y + rest + j, value(rest + j, cnt), cnt); });
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn
