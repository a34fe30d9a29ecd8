// CPU instruction-set paths and the runtime dispatch table.
//
// Every hot kernel is compiled three times (see CMakeLists.txt): a portable baseline, AVX2+FMA
// and AVX-512 (F/BW/DQ/VL), each into its own namespace fastattn::isa_<name>. At import the
// best path the CPU *and the OS* support is chosen (CPUID feature bits plus XGETBV, which tells
// whether the OS saves YMM / ZMM+opmask state). FASTATTN_ISA or set_isa() may force a lower one.
#pragma once

#include <array>
#include <string>
#include <vector>

namespace fastattn {

enum class Isa : int { baseline = 0, avx2 = 1, avx512 = 2 };
constexpr int kNumIsas = 3;

const char* isa_name(Isa isa);
// Parses "baseline" / "avx2" / "avx512"; throws std::invalid_argument naming the choices.
Isa parse_isa(const std::string& name);

bool cpu_supports(Isa isa);          // hardware + OS support, detected once
std::vector<std::string> available_isas();
Isa best_isa();
Isa current_isa();
// Throws std::invalid_argument if the CPU lacks `isa`.
void set_isa(Isa isa);

std::string cpu_model();
std::vector<std::string> cpu_features();  // the flags dispatch looks at, as detected

// Each ISA namespace defines `void register_kernels(Table&, Tag)` for every kernel table it
// fills (found by argument-dependent lookup through its Tag). A kernel header declares them with
// FASTATTN_DECLARE_KERNEL_TABLE(Table).
namespace isa_baseline { struct Tag {}; }
namespace isa_avx2 { struct Tag {}; }
namespace isa_avx512 { struct Tag {}; }

#define FASTATTN_DECLARE_KERNEL_TABLE(Table)                       \
  namespace isa_baseline { void register_kernels(Table&, Tag); } \
  namespace isa_avx2 { void register_kernels(Table&, Tag); }     \
  namespace isa_avx512 { void register_kernels(Table&, Tag); }

// The table of `Table` for the current ISA. Tables are filled lazily, once, and only for paths
// the CPU supports: a registration function compiled with -mavx512f is never even called on
// an older CPU. Used by the bindings (baseline code) only.
template <class Table>
const Table& kernels() {
  static const std::array<Table, kNumIsas> tables = [] {
    std::array<Table, kNumIsas> t{};
    register_kernels(t[0], isa_baseline::Tag{});
#if defined(FASTATTN_HAVE_X86_PATHS)
    if (cpu_supports(Isa::avx2)) register_kernels(t[1], isa_avx2::Tag{});
    if (cpu_supports(Isa::avx512)) register_kernels(t[2], isa_avx512::Tag{});
#endif
    return t;
  }();
  return tables[static_cast<int>(current_isa())];
}

}  // namespace fastattn
