// x86 SIMD intrinsics of the CPU kernels: the compiler's own, or SIMDe's
// portable AVX-512 for the test build that checks the AVX-512 kernels on
// machines without AVX-512.
//
// Native build (setup.py): <immintrin.h>. The AVX-512 and AVX2 kernels carry
// GCC target attributes (MMPKKD_TARGET_AVX512 for the AVX-512 ones), so the
// files are compiled without -mavx* flags and the kernel set is chosen at run
// time from CPUID.
//
// Emulated build (MMPKKD_EMULATE_AVX512, set only by tests/test_ops/simde_build.py):
// the same sources are compiled for an AVX2 target against SIMDe (SIMD
// Everywhere, header-only), whose native aliases map every _mm512_* name
// and type to a software implementation built from AVX2. The AVX-512
// kernels then carry no target attribute (it would let GCC emit real
// AVX-512 instructions) and count as supported on every CPU
// (kAvx512Emulated), so the "avx512" kernel sets run everywhere.
#pragma once

#if defined(MMPKKD_EMULATE_AVX512)
#if defined(__AVX512F__)
#error "MMPKKD_EMULATE_AVX512 needs a target without AVX-512 (no -mavx512*)"
#endif
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#define MMPKKD_X86 1
#define MMPKKD_TARGET_AVX512(features)
#elif defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define MMPKKD_X86 1
#define MMPKKD_TARGET_AVX512(features) __attribute__((target(features)))
#endif

namespace mmpkkd {
namespace cpu {

// Whether the "avx512" kernel sets of this build are SIMDe emulations,
// available whatever the CPU supports.
#if defined(MMPKKD_EMULATE_AVX512)
constexpr bool kAvx512Emulated = true;
#else
constexpr bool kAvx512Emulated = false;
#endif

}  // namespace cpu
}  // namespace mmpkkd
