#include "core/memory.h"

#include <cstdlib>
#include <new>
#include <utility>

namespace fastattn {
namespace {
float* allocate(std::size_t count) {
  if (count == 0) return nullptr;
  std::size_t bytes = count * sizeof(float);
  bytes = (bytes + kScratchAlignment - 1) / kScratchAlignment * kScratchAlignment;
  void* p = ::operator new(bytes, std::align_val_t(kScratchAlignment));
  return static_cast<float*>(p);
}
void release(float* p) {
  if (p) ::operator delete(p, std::align_val_t(kScratchAlignment));
}
}  // namespace

AlignedFloats::AlignedFloats(std::size_t count) : data_(allocate(count)), size_(count) {}
AlignedFloats::~AlignedFloats() { release(data_); }
AlignedFloats::AlignedFloats(AlignedFloats&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
AlignedFloats& AlignedFloats::operator=(AlignedFloats&& o) noexcept {
  if (this != &o) {
    release(data_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}
void AlignedFloats::reserve(std::size_t count) {
  if (count <= size_) return;
  float* p = allocate(count);
  release(data_);
  data_ = p;
  size_ = count;
}

}  // namespace fastattn
