// Ops of the test build with emulated AVX-512 (tests/simde_build.py).
//
// That build compiles the CPU sources of the adder2d and adder2d_int8 ops a
// second time, for an AVX2 target with SIMDe standing in for the AVX-512
// intrinsics (common/cpu_simd.h), and with -Dmmpkkd=mmpkkd_simde: every C++
// symbol and every op lands in namespace mmpkkd_simde, so the build loads
// next to the real extension without clashing with it. The int8 ops
// register themselves (cpu/adder2d_int8.cpp); this file registers the float
// op and the float kernel-set switch (done by register_ops.cpp and
// pybind.cpp in the real extension, which are not part of this build), and
// reports how the build was made.
#include <torch/library.h>

#include <string>
#include <vector>

#include "adder2d.h"
#include "adder2d_cpu_kernels.h"
#include "cpu_simd.h"

namespace mmpkkd {
namespace {

std::string cpu_isa(const std::string& name) {
  return name.empty() ? cpu::active_isa() : cpu::set_isa(name);
}

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
  // the schemas of the real ops (a test compares them)
  m.def(
      "adder2d(Tensor input, Tensor weight, Tensor? bias, int[2] stride, "
      "int[2] padding, int[2] dilation, int groups) -> Tensor");
  m.def(
      "adder2d_backward(Tensor grad_output, Tensor input, Tensor weight, "
      "int[2] stride, int[2] padding, int[2] dilation, int groups, "
      "bool[2] output_mask) -> (Tensor, Tensor)");
  m.def("adder2d_cpu_isa(str name='') -> str", &mmpkkd::cpu_isa);
  m.def("build_info() -> str[]", &mmpkkd::build_info);
}

TORCH_LIBRARY_IMPL(mmpkkd, CPU, m) {
  m.impl("adder2d", &mmpkkd::adder2d_forward);
  m.impl("adder2d_backward", &mmpkkd::adder2d_backward);
}
