// Scalar building blocks of the adder op, shared by CPU and CUDA code.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define MMPKKD_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define MMPKKD_HOST_DEVICE inline
#endif

namespace mmpkkd {

// |v| for float and double (fabsf/fabs: on GPUs |.| is a free operand
// modifier of the following add).
MMPKKD_HOST_DEVICE float abs_val(float v) { return fabsf(v); }
MMPKKD_HOST_DEVICE double abs_val(double v) { return fabs(v); }

// |a - b|: one adder "multiply-accumulate" term.
template <typename T>
MMPKKD_HOST_DEVICE T absdiff(T a, T b) {
  return abs_val(a - b);
}

// HardTanh: clip to [-1, 1] (AdderNet's input-gradient surrogate).
template <typename T>
MMPKKD_HOST_DEVICE T hardtanh(T v) {
  return v < T(-1) ? T(-1) : (v > T(1) ? T(1) : v);
}

MMPKKD_HOST_DEVICE int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

MMPKKD_HOST_DEVICE int64_t round_up(int64_t a, int64_t b) {
  return ceil_div(a, b) * b;
}

}  // namespace mmpkkd
