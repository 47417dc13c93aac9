// Register-blocked microkernels of the int8 adder2d (layout: see
// common/adder2d_int8.h).
//
// The inner step is a GEMM whose multiply-add is one SAD instruction:
//   acc[i][v] += psadbw(broadcast64(X[i]), W[v])
// vpsadbw sums |a - b| over the 8 unsigned bytes of each 64-bit lane. With
// the 8 weight bytes of one output channel per lane and 8 input bytes of
// output position i broadcast to every lane, one instruction adds 8
// absolute differences to 4 (AVX2) or 8 (AVX-512) outputs, and every 64-bit
// accumulator lane ends as one output: no horizontal reduction. (VNNI's
// vpdpbusd multiplies, so it cannot compute |a - b|.)
//
// The AVX-512 (needs AVX-512BW for the byte SAD on zmm) and AVX2 versions
// carry GCC target attributes, like the float kernels, so the file is built
// without -mavx* flags and the kernel set is chosen at run time. A test
// build compiles the AVX-512 version against SIMDe instead (cpu_simd.h).
#include <atomic>
#include <cstdlib>
#include <cstring>

#include <c10/util/Exception.h>

#include "adder2d_int8.h"
#include "cpu_simd.h"  // MMPKKD_X86, MMPKKD_TARGET_AVX512

namespace mmpkkd {
namespace cpu {
namespace {

// ---------------------------------------------------------------- portable
template <int MR, int NR>
void fwd_generic(int64_t taps, int64_t nq, const int64_t* off,
                 const uint8_t* const* x, const uint8_t* w, int64_t* c,
                 bool accumulate) {
  int64_t acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int r = 0; r < NR; ++r) acc[i][r] = accumulate ? c[i * NR + r] : 0;
  for (int64_t t = 0; t < taps; ++t) {
    for (int64_t q = 0; q < nq; ++q, w += NR * 8) {
      for (int i = 0; i < MR; ++i) {
        const uint8_t* xi = x[i] + off[t] + 8 * q;
        for (int r = 0; r < NR; ++r) {
          int32_t sad = 0;
          for (int b = 0; b < 8; ++b) {
            const int32_t d = int32_t(xi[b]) - int32_t(w[r * 8 + b]);
            sad += d < 0 ? -d : d;
          }
          acc[i][r] += sad;
        }
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int r = 0; r < NR; ++r) c[i * NR + r] = acc[i][r];
}

#ifdef MMPKKD_X86
inline int64_t load_u64(const uint8_t* p) {
  int64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// -------------------------------------------------------------------- AVX2
// MR positions x (4 * NV) channels: MR * NV ymm accumulators, NV weight
// vectors and one broadcast live at a time (16 registers).
template <int MR, int NV>
__attribute__((target("avx2"))) void fwd_avx2(int64_t taps, int64_t nq,
                                              const int64_t* off,
                                              const uint8_t* const* x,
                                              const uint8_t* w, int64_t* c,
                                              bool accumulate) {
  __m256i acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      acc[i][v] = accumulate ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                                   c + i * NV * 4 + 4 * v))
                             : _mm256_setzero_si256();
  const uint8_t* xi[MR];
  for (int64_t t = 0; t < taps; ++t) {
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) xi[i] = x[i] + off[t];
    for (int64_t q = 0; q < nq; ++q) {
      __m256i wv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v)
        wv[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32 * v));
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const __m256i xb = _mm256_set1_epi64x(load_u64(xi[i] + 8 * q));
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v)
          acc[i][v] = _mm256_add_epi64(acc[i][v], _mm256_sad_epu8(xb, wv[v]));
      }
      w += NV * 32;
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + i * NV * 4 + 4 * v),
                          acc[i][v]);
}

// ----------------------------------------------------------------- AVX-512
// MR positions x (8 * NV) channels in zmm registers (32 of them).
template <int MR, int NV>
MMPKKD_TARGET_AVX512("avx512f,avx512bw") void fwd_avx512(
    int64_t taps, int64_t nq, const int64_t* off, const uint8_t* const* x,
    const uint8_t* w, int64_t* c, bool accumulate) {
  __m512i acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      acc[i][v] = accumulate ? _mm512_loadu_si512(c + i * NV * 8 + 8 * v)
                             : _mm512_setzero_si512();
  const uint8_t* xi[MR];
  for (int64_t t = 0; t < taps; ++t) {
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) xi[i] = x[i] + off[t];
    for (int64_t q = 0; q < nq; ++q) {
      __m512i wv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) wv[v] = _mm512_loadu_si512(w + 64 * v);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const __m512i xb = _mm512_set1_epi64(load_u64(xi[i] + 8 * q));
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v)
          acc[i][v] = _mm512_add_epi64(acc[i][v], _mm512_sad_epu8(xb, wv[v]));
      }
      w += NV * 64;
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      _mm512_storeu_si512(c + i * NV * 8 + 8 * v, acc[i][v]);
}
#endif  // MMPKKD_X86

// ------------------------------------------------------------ kernel sets
const AdderInt8Kernels kGeneric{"generic", 4, 8, &fwd_generic<4, 8>};
#ifdef MMPKKD_X86
constexpr int kAvx2MR = 3, kAvx2NV = 4;
const AdderInt8Kernels kAvx2{"avx2", kAvx2MR, 4 * kAvx2NV,
                             &fwd_avx2<kAvx2MR, kAvx2NV>};
constexpr int kAvx512MR = 8, kAvx512NV = 2;
const AdderInt8Kernels kAvx512{"avx512", kAvx512MR, 8 * kAvx512NV,
                               &fwd_avx512<kAvx512MR, kAvx512NV>};
#endif

bool cpu_has(const std::string& name) {
  if (name == "generic") return true;
#ifdef MMPKKD_X86
  __builtin_cpu_init();
  if (name == "avx512")
    return kAvx512Emulated || (__builtin_cpu_supports("avx512f") &&
                               __builtin_cpu_supports("avx512bw"));
  if (name == "avx2") return __builtin_cpu_supports("avx2");
#endif
  return false;
}

const AdderInt8Kernels* by_name(const std::string& name) {
#ifdef MMPKKD_X86
  if (name == "avx512") return &kAvx512;
  if (name == "avx2") return &kAvx2;
#endif
  if (name == "generic") return &kGeneric;
  return nullptr;
}

const AdderInt8Kernels* best_supported() {
  for (const char* name : {"avx512", "avx2"})
    if (cpu_has(name)) return by_name(name);
  return &kGeneric;
}

const AdderInt8Kernels* select(const std::string& name) {
  if (name.empty() || name == "auto") return best_supported();
  const AdderInt8Kernels* k = by_name(name);
  TORCH_CHECK_VALUE(k != nullptr, "adder2d_int8: unknown CPU ISA '", name,
                    "'; use one of auto, avx512, avx2, generic");
  TORCH_CHECK_VALUE(cpu_has(name), "adder2d_int8: this CPU does not support '",
                    name, "'; see mmpkkd.ops.cpu_isas_available("
                    "'adder2d_int8')");
  return k;
}

std::atomic<const AdderInt8Kernels*>& current() {
  static std::atomic<const AdderInt8Kernels*> cur{[] {
    const char* env = std::getenv("MMPKKD_INT8_CPU_ISA");
    try {
      return select(env ? env : "auto");
    } catch (const std::exception&) {
      return best_supported();  // bad env value: ignore it
    }
  }()};
  return cur;
}

}  // namespace

const AdderInt8Kernels& int8_kernels() { return *current().load(); }

std::string int8_active_isa() { return int8_kernels().isa; }

std::string int8_set_isa(const std::string& name) {
  current().store(select(name));
  return int8_active_isa();
}

std::vector<std::string> int8_supported_isas() {
  std::vector<std::string> out;
  for (const char* name : {"avx512", "avx2", "generic"})
    if (cpu_has(name)) out.emplace_back(name);
  return out;
}

}  // namespace cpu
}  // namespace mmpkkd
