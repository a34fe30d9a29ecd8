// CPUID / XGETBV feature detection and the process-wide ISA choice.
#include "core/isa.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#if defined(FASTATTN_HAVE_X86_PATHS)
#if defined(_MSC_VER)
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#endif

namespace fastattn {
namespace {

struct CpuFeatures {
  bool avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false;
  bool os_ymm = false, os_zmm = false;
  std::string model;
};

#if defined(FASTATTN_HAVE_X86_PATHS)
void cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
#if defined(_MSC_VER)
  int regs[4];
  __cpuidex(regs, static_cast<int>(leaf), static_cast<int>(sub));
  for (int i = 0; i < 4; ++i) r[i] = static_cast<unsigned>(regs[i]);
#else
  __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
#endif
}

uint64_t xgetbv0() {
#if defined(_MSC_VER)
  return _xgetbv(0);
#else
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
#endif
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#if defined(FASTATTN_HAVE_X86_PATHS)
  unsigned r[4];
  cpuid(0, 0, r);
  const unsigned max_leaf = r[0];
  cpuid(1, 0, r);
  const bool osxsave = (r[2] >> 27) & 1;
  f.avx = (r[2] >> 28) & 1;
  f.fma = (r[2] >> 12) & 1;
  f.f16c = (r[2] >> 29) & 1;
  if (osxsave) {
    const uint64_t xcr0 = xgetbv0();
    f.os_ymm = (xcr0 & 0x6) == 0x6;     // XMM and YMM state
    f.os_zmm = (xcr0 & 0xe6) == 0xe6;   // plus opmask, ZMM_Hi256, Hi16_ZMM (bits 5-7)
  }
  if (max_leaf >= 7) {
    cpuid(7, 0, r);
    f.avx2 = (r[1] >> 5) & 1;
    f.avx512f = (r[1] >> 16) & 1;
    f.avx512dq = (r[1] >> 17) & 1;
    f.avx512bw = (r[1] >> 30) & 1;
    f.avx512vl = (r[1] >> 31) & 1;
  }
  cpuid(0x80000000u, 0, r);
  if (r[0] >= 0x80000004u) {
    char brand[49] = {0};
    for (unsigned i = 0; i < 3; ++i) {
      cpuid(0x80000002u + i, 0, r);
      std::memcpy(brand + 16 * i, r, 16);
    }
    f.model = brand;
    const auto b = f.model.find_first_not_of(' ');
    const auto e = f.model.find_last_not_of(' ');
    f.model = b == std::string::npos ? "" : f.model.substr(b, e - b + 1);
  }
#else
  f.model = "unknown (non-x86 build: baseline path only)";
#endif
  return f;
}

const CpuFeatures& features() {
  static const CpuFeatures f = detect();
  return f;
}

Isa detect_best() {
  for (Isa isa : {Isa::avx512, Isa::avx2})
    if (cpu_supports(isa)) return isa;
  return Isa::baseline;
}

std::atomic<int>& current_slot() {
  static std::atomic<int> slot{static_cast<int>(detect_best())};
  return slot;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::baseline: return "baseline";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "?";
}

Isa parse_isa(const std::string& name) {
  for (Isa isa : {Isa::baseline, Isa::avx2, Isa::avx512})
    if (name == isa_name(isa)) return isa;
  throw std::invalid_argument("unknown ISA path '" + name +
                              "', expected one of 'baseline', 'avx2', 'avx512'");
}

bool cpu_supports(Isa isa) {
  const CpuFeatures& f = features();
  switch (isa) {
    case Isa::baseline: return true;
#if defined(FASTATTN_HAVE_X86_PATHS)
    case Isa::avx2: return f.avx && f.avx2 && f.fma && f.f16c && f.os_ymm;
    case Isa::avx512:
      return cpu_supports(Isa::avx2) && f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl &&
             f.os_zmm;
#endif
    default: return false;
  }
}

std::vector<std::string> available_isas() {
  std::vector<std::string> out;
  for (Isa isa : {Isa::baseline, Isa::avx2, Isa::avx512})
    if (cpu_supports(isa)) out.emplace_back(isa_name(isa));
  return out;
}

Isa best_isa() { return detect_best(); }
Isa current_isa() { return static_cast<Isa>(current_slot().load(std::memory_order_relaxed)); }

void set_isa(Isa isa) {
  if (!cpu_supports(isa))
    throw std::invalid_argument(std::string("ISA path '") + isa_name(isa) +
                                "' is not supported by this CPU (available: " +
                                [] {
                                  std::string s;
                                  for (auto& n : available_isas()) s += (s.empty() ? "" : ", ") + n;
                                  return s;
                                }() + ")");
  current_slot().store(static_cast<int>(isa), std::memory_order_relaxed);
}

std::string cpu_model() { return features().model; }

std::vector<std::string> cpu_features() {
  const CpuFeatures& f = features();
  std::vector<std::string> out;
  auto add = [&](bool on, const char* name) { if (on) out.emplace_back(name); };
  add(f.avx, "avx"); add(f.avx2, "avx2"); add(f.fma, "fma"); add(f.f16c, "f16c");
  add(f.avx512f, "avx512f"); add(f.avx512bw, "avx512bw"); add(f.avx512dq, "avx512dq");
  add(f.avx512vl, "avx512vl"); add(f.os_ymm, "os_ymm_state"); add(f.os_zmm, "os_zmm_state");
  return out;
}

}  // namespace fastattn
