// CPU microkernels of adder2d, selected at run time for the host's ISA
// (AVX-512F, AVX2+FMA or portable C++); see cpu/adder2d_cpu_kernels.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mmpkkd {
namespace cpu {

template <typename T>
struct AdderCpuKernels {
  const char* isa;
  // Forward register block: C is MR x NR (row-major, packed).
  //   C[i][j] (+)= sum_{k < kc} |A[i*lda + k] - B[k*NR + j]|
  // A: weight rows (read in place, row stride lda), B: packed im2col panel.
  int fwd_mr, fwd_nr;
  void (*fwd)(int64_t kc, const T* a, int64_t lda, const T* b, T* c,
              bool accumulate);
  // Input-gradient register block over MR reduction rows k and NR columns p:
  //   dX[i*ld + j] (+)= sum_{co < m} HardTanh(Wt[co*ldw + i] - X[i*ld + j])
  //                                  * dY[co*ld + j]
  // Wt: weights read in place (column block of W, row stride ldw); X, dX,
  // dY: row stride ld.
  int dx_mr, dx_nr;
  void (*dx)(int64_t m, const T* wt, int64_t ldw, const T* dy, const T* x,
             T* dx, int64_t ld, bool accumulate);
};

// The kernels in use (best supported ISA unless forced).
const AdderCpuKernels<float>& kernels_f32();
const AdderCpuKernels<double>& kernels_f64();

template <typename T>
const AdderCpuKernels<T>& kernels();
template <>
inline const AdderCpuKernels<float>& kernels<float>() {
  return kernels_f32();
}
template <>
inline const AdderCpuKernels<double>& kernels<double>() {
  return kernels_f64();
}

// Name of the float32 kernel set in use: "avx512", "avx2" or "generic".
std::string active_isa();
// Force a kernel set ("avx512", "avx2", "generic") or go back to the best
// supported one ("auto"). Raises if the CPU lacks the ISA. Returns the
// active name. Also read once from env MMPKKD_ADDER_CPU_ISA.
std::string set_isa(const std::string& name);
// Kernel sets this CPU can run, best first (always ends with "generic").
std::vector<std::string> supported_isas();

}  // namespace cpu
}  // namespace mmpkkd
