// Aligned scratch memory for kernels. Defined in a baseline translation unit (non-template,
// non-inline), so ISA-specific kernels can use it without instantiating std containers.
#pragma once

#include <cstddef>

namespace fastattn {

constexpr std::size_t kScratchAlignment = 64;  // one cache line, one zmm register

// Owning, move-only buffer of floats aligned to 64 bytes; contents uninitialised.
class AlignedFloats {
 public:
  AlignedFloats() = default;
  explicit AlignedFloats(std::size_t count);
  ~AlignedFloats();
  AlignedFloats(AlignedFloats&& other) noexcept;
  AlignedFloats& operator=(AlignedFloats&& other) noexcept;
  AlignedFloats(const AlignedFloats&) = delete;
  AlignedFloats& operator=(const AlignedFloats&) = delete;

  float* data() const { return data_; }
  std::size_t size() const { return size_; }
  // Grows (never shrinks) to at least `count` floats; old contents are not kept.
  void reserve(std::size_t count);

 private:
  float* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace fastattn
