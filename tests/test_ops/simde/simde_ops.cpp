// How the test build with emulated AVX-512 was made (tests/test_ops/simde_build.py).
//
// That build compiles the CPU sources of the adder2d and adder2d_int8 ops
// and their registration (register_ops.cpp) a second time, for an AVX2
// target with SIMDe standing in for the AVX-512 intrinsics
// (common/cpu_simd.h), and with -Dmmpkkd=mmpkkd_simde: every C++ symbol and
// every op lands in namespace mmpkkd_simde, so the build loads next to the
// real extension without clashing with it. This file adds one op,
// build_info, the facts the tests check about the build.
#include <torch/library.h>

#include <string>
#include <vector>

#include "cpu_simd.h"

namespace mmpkkd {
namespace {

// "key=value" facts about this build, checked by the tests.
std::vector<std::string> build_info() {
  std::vector<std::string> info;
  info.push_back(std::string("avx512_emulated=") +
                 (cpu::kAvx512Emulated ? "1" : "0"));
#if defined(SIMDE_VERSION_MAJOR)
  info.push_back("simde_version=" + std::to_string(SIMDE_VERSION_MAJOR) +
                 "." + std::to_string(SIMDE_VERSION_MINOR) + "." +
                 std::to_string(SIMDE_VERSION_MICRO));
#endif
#if defined(__AVX512F__)
  info.push_back("target_avx512f=1");
#else
  info.push_back("target_avx512f=0");
#endif
#if defined(SIMDE_X86_AVX512F_NATIVE) || defined(SIMDE_X86_AVX512BW_NATIVE)
  info.push_back("simde_avx512_native=1");
#else
  info.push_back("simde_avx512_native=0");
#endif
#if defined(SIMDE_X86_AVX2_NATIVE)
  info.push_back("simde_avx2_native=1");
#else
  info.push_back("simde_avx2_native=0");
#endif
  return info;
}

}  // namespace
}  // namespace mmpkkd

TORCH_LIBRARY_FRAGMENT(mmpkkd, m) {
  m.def("build_info() -> str[]", &mmpkkd::build_info);
}
