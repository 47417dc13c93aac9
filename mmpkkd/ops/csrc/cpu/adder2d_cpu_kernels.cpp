// Register-blocked microkernels of adder2d for the CPU.
//
// Forward: a GEMM-shaped loop whose multiply-add is replaced by
//   acc += |b - a|   ==   vsub, vabs (an AND with the sign mask), vadd,
// with an MR x NR block of accumulators held in registers; the weights (A)
// are broadcast one scalar at a time, the im2col panel (B) is loaded one
// row of NR floats at a time.
// Input gradient: per output element (k, p) the input value x is fixed, so
// it is kept in registers and the loop runs over output channels:
//   acc += clip(w - x, -1, 1) * dy   ==   vsub, vmax, vmin, vfmadd.
//
// The AVX-512 and AVX2 versions carry GCC target attributes, so this file
// is compiled without -mavx* flags and the binary runs on any x86-64 CPU;
// the kernel set is chosen at run time with __builtin_cpu_supports. A test
// build compiles the AVX-512 versions against SIMDe instead (cpu_simd.h).
#include <atomic>
#include <cstdlib>
#include <stdexcept>

#include "adder2d_cpu_kernels.h"
#include "adder2d_math.h"
#include "cpu_simd.h"

namespace mmpkkd {
namespace cpu {
namespace {

// ---------------------------------------------------------------- portable
template <typename T, int MR, int NR>
void fwd_generic(int64_t kc, const T* a, int64_t lda, const T* b, T* c,
                 bool accumulate) {
  T acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = accumulate ? c[i * NR + j] : T(0);
  for (int64_t k = 0; k < kc; ++k) {
    const T* bk = b + k * NR;
    for (int i = 0; i < MR; ++i) {
      const T ai = a[i * lda + k];
      for (int j = 0; j < NR; ++j) acc[i][j] += absdiff(bk[j], ai);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) c[i * NR + j] = acc[i][j];
}

template <typename T, int MR, int NR>
void dx_generic(int64_t m, const T* wt, int64_t ldw, const T* dy, const T* x,
                T* dx, int64_t ld, bool accumulate) {
  T acc[MR][NR];
  T xv[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) {
      xv[i][j] = x[i * ld + j];
      acc[i][j] = accumulate ? dx[i * ld + j] : T(0);
    }
  for (int64_t co = 0; co < m; ++co) {
    const T* dyc = dy + co * ld;
    for (int i = 0; i < MR; ++i) {
      const T w = wt[co * ldw + i];
      for (int j = 0; j < NR; ++j)
        acc[i][j] += hardtanh(w - xv[i][j]) * dyc[j];
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) dx[i * ld + j] = acc[i][j];
}

#ifdef MMPKKD_X86
// GCC 12 flags the _mm512_undefined_ps() inside _mm512_max/min_ps.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// ----------------------------------------------------------------- AVX-512
constexpr int kAvx512FwdMR = 8, kAvx512DxMR = 4, kAvx512NR = 32;

MMPKKD_TARGET_AVX512("avx512f") void fwd_f32_avx512(
    int64_t kc, const float* a, int64_t lda, const float* b, float* c,
    bool accumulate) {
  constexpr int MR = kAvx512FwdMR, NR = kAvx512NR;
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    c0[i] = accumulate ? _mm512_loadu_ps(c + i * NR) : _mm512_setzero_ps();
    c1[i] = accumulate ? _mm512_loadu_ps(c + i * NR + 16) : _mm512_setzero_ps();
  }
  const __m512 one = _mm512_set1_ps(1.f);
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b);
    const __m512 b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i * lda]);
      // b - a as -(a * 1) + b: bitwise the same as vsubps (a * 1 is exact,
      // one rounding), but it may issue on the FMA pipes where those are
      // separate from the FADD pipes.
      c0[i] = _mm512_add_ps(c0[i],
                            _mm512_abs_ps(_mm512_fnmadd_ps(ai, one, b0)));
      c1[i] = _mm512_add_ps(c1[i],
                            _mm512_abs_ps(_mm512_fnmadd_ps(ai, one, b1)));
    }
    a += 1;
    b += NR;
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    _mm512_storeu_ps(c + i * NR, c0[i]);
    _mm512_storeu_ps(c + i * NR + 16, c1[i]);
  }
}

MMPKKD_TARGET_AVX512("avx512f") void dx_f32_avx512(
    int64_t m, const float* wt, int64_t ldw, const float* dy, const float* x,
    float* dx, int64_t ld, bool accumulate) {
  constexpr int MR = kAvx512DxMR;
  __m512 x0[MR], x1[MR], c0[MR], c1[MR];
  const __m512 one = _mm512_set1_ps(1.f), neg_one = _mm512_set1_ps(-1.f);
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) {
    x0[i] = _mm512_loadu_ps(x + i * ld);
    x1[i] = _mm512_loadu_ps(x + i * ld + 16);
    c0[i] = accumulate ? _mm512_loadu_ps(dx + i * ld) : _mm512_setzero_ps();
    c1[i] = accumulate ? _mm512_loadu_ps(dx + i * ld + 16) : _mm512_setzero_ps();
  }
  for (int64_t co = 0; co < m; ++co) {
    const __m512 g0 = _mm512_loadu_ps(dy);
    const __m512 g1 = _mm512_loadu_ps(dy + 16);
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      const __m512 w = _mm512_set1_ps(wt[i]);
      // w - x computed as -(x * 1) + w (exact same result, see forward)
      const __m512 h0 = _mm512_min_ps(
          _mm512_max_ps(_mm512_fnmadd_ps(x0[i], one, w), neg_one), one);
      const __m512 h1 = _mm512_min_ps(
          _mm512_max_ps(_mm512_fnmadd_ps(x1[i], one, w), neg_one), one);
      c0[i] = _mm512_fmadd_ps(h0, g0, c0[i]);
      c1[i] = _mm512_fmadd_ps(h1, g1, c1[i]);
    }
    wt += ldw;
    dy += ld;
  }
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) {
    _mm512_storeu_ps(dx + i * ld, c0[i]);
    _mm512_storeu_ps(dx + i * ld + 16, c1[i]);
  }
}

// -------------------------------------------------------------------- AVX2
constexpr int kAvx2FwdMR = 4, kAvx2DxMR = 2, kAvx2NR = 16;

__attribute__((target("avx2,fma"))) void fwd_f32_avx2(
    int64_t kc, const float* a, int64_t lda, const float* b, float* c,
    bool accumulate) {
  constexpr int MR = kAvx2FwdMR, NR = kAvx2NR;
  const __m256 sign = _mm256_set1_ps(-0.f);
  __m256 c0[MR], c1[MR];
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) {
    c0[i] = accumulate ? _mm256_loadu_ps(c + i * NR) : _mm256_setzero_ps();
    c1[i] = accumulate ? _mm256_loadu_ps(c + i * NR + 8) : _mm256_setzero_ps();
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i * lda);
      c0[i] = _mm256_add_ps(c0[i],
                            _mm256_andnot_ps(sign, _mm256_sub_ps(b0, ai)));
      c1[i] = _mm256_add_ps(c1[i],
                            _mm256_andnot_ps(sign, _mm256_sub_ps(b1, ai)));
    }
    a += 1;
    b += NR;
  }
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) {
    _mm256_storeu_ps(c + i * NR, c0[i]);
    _mm256_storeu_ps(c + i * NR + 8, c1[i]);
  }
}

__attribute__((target("avx2,fma"))) void dx_f32_avx2(
    int64_t m, const float* wt, int64_t ldw, const float* dy, const float* x,
    float* dx, int64_t ld, bool accumulate) {
  constexpr int MR = kAvx2DxMR;
  __m256 x0[MR], x1[MR], c0[MR], c1[MR];
  const __m256 one = _mm256_set1_ps(1.f), neg_one = _mm256_set1_ps(-1.f);
#pragma GCC unroll 2
  for (int i = 0; i < MR; ++i) {
    x0[i] = _mm256_loadu_ps(x + i * ld);
    x1[i] = _mm256_loadu_ps(x + i * ld + 8);
    c0[i] = accumulate ? _mm256_loadu_ps(dx + i * ld) : _mm256_setzero_ps();
    c1[i] = accumulate ? _mm256_loadu_ps(dx + i * ld + 8) : _mm256_setzero_ps();
  }
  for (int64_t co = 0; co < m; ++co) {
    const __m256 g0 = _mm256_loadu_ps(dy);
    const __m256 g1 = _mm256_loadu_ps(dy + 8);
#pragma GCC unroll 2
    for (int i = 0; i < MR; ++i) {
      const __m256 w = _mm256_broadcast_ss(wt + i);
      const __m256 h0 = _mm256_min_ps(
          _mm256_max_ps(_mm256_sub_ps(w, x0[i]), neg_one), one);
      const __m256 h1 = _mm256_min_ps(
          _mm256_max_ps(_mm256_sub_ps(w, x1[i]), neg_one), one);
      c0[i] = _mm256_fmadd_ps(h0, g0, c0[i]);
      c1[i] = _mm256_fmadd_ps(h1, g1, c1[i]);
    }
    wt += ldw;
    dy += ld;
  }
#pragma GCC unroll 2
  for (int i = 0; i < MR; ++i) {
    _mm256_storeu_ps(dx + i * ld, c0[i]);
    _mm256_storeu_ps(dx + i * ld + 8, c1[i]);
  }
}
#endif  // MMPKKD_X86

// ------------------------------------------------------------ kernel sets
const AdderCpuKernels<float> kGenericF32{
    "generic", 4, 16, &fwd_generic<float, 4, 16>, 2, 16,
    &dx_generic<float, 2, 16>};
const AdderCpuKernels<double> kGenericF64{
    "generic", 4, 8, &fwd_generic<double, 4, 8>, 2, 8,
    &dx_generic<double, 2, 8>};
#ifdef MMPKKD_X86
const AdderCpuKernels<float> kAvx512F32{
    "avx512", kAvx512FwdMR, kAvx512NR, &fwd_f32_avx512,
    kAvx512DxMR, kAvx512NR, &dx_f32_avx512};
const AdderCpuKernels<float> kAvx2F32{"avx2",       kAvx2FwdMR, kAvx2NR,
                                      &fwd_f32_avx2, kAvx2DxMR, kAvx2NR,
                                      &dx_f32_avx2};
#endif

bool cpu_has(const std::string& name) {
  if (name == "generic") return true;
#ifdef MMPKKD_X86
  __builtin_cpu_init();
  if (name == "avx512")
    return kAvx512Emulated || __builtin_cpu_supports("avx512f");
  if (name == "avx2")
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return false;
}

const AdderCpuKernels<float>* by_name(const std::string& name) {
#ifdef MMPKKD_X86
  if (name == "avx512") return &kAvx512F32;
  if (name == "avx2") return &kAvx2F32;
#endif
  if (name == "generic") return &kGenericF32;
  return nullptr;
}

const AdderCpuKernels<float>* best_supported() {
  for (const char* name : {"avx512", "avx2"})
    if (cpu_has(name)) return by_name(name);
  return &kGenericF32;
}

const AdderCpuKernels<float>* select(const std::string& name) {
  if (name.empty() || name == "auto") return best_supported();
  const AdderCpuKernels<float>* k = by_name(name);
  if (k == nullptr)
    throw std::invalid_argument(
        "adder2d: unknown CPU ISA '" + name +
        "'; use one of auto, avx512, avx2, generic");
  if (!cpu_has(name))
    throw std::invalid_argument("adder2d: this CPU does not support '" +
                                name + "'");
  return k;
}

std::atomic<const AdderCpuKernels<float>*>& current_f32() {
  static std::atomic<const AdderCpuKernels<float>*> current{[] {
    const char* env = std::getenv("MMPKKD_ADDER_CPU_ISA");
    try {
      return select(env ? env : "auto");
    } catch (const std::exception&) {
      return best_supported();  // bad env value: ignore it
    }
  }()};
  return current;
}

}  // namespace

const AdderCpuKernels<float>& kernels_f32() { return *current_f32().load(); }

const AdderCpuKernels<double>& kernels_f64() { return kGenericF64; }

std::string active_isa() { return kernels_f32().isa; }

std::string set_isa(const std::string& name) {
  current_f32().store(select(name));
  return active_isa();
}

std::vector<std::string> supported_isas() {
  std::vector<std::string> out;
  for (const char* name : {"avx512", "avx2", "generic"})
    if (cpu_has(name)) out.emplace_back(name);
  return out;
}

}  // namespace cpu
}  // namespace mmpkkd
