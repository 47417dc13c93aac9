// CPU driver of the int8 adder2d ops (torch.ops.mmpkkd, registered in
// register_ops.cpp):
//
//   adder2d_int8(int8 x, int8 w, ...) -> int32  y = -sum |x_pad - w|
//   adder2d_int8_affine(float x, int8 w, inv_scale, zero_point, alpha,
//                       beta, ...) -> float32
//       x is quantised on the fly, q = clamp(round(x * inv_scale) +
//       zero_point, -128, 127) (round half to even, padding = zero_point,
//       i.e. a real 0), and the exact int32 sum S = -sum |q_pad - w| is
//       written as alpha[c] * S + beta[c] (a BN folded onto the sum).
//       x must be finite: int8 has no code for NaN or infinity, so a
//       non-finite value anywhere in x raises ValueError (detected during
//       the quantisation pass, at no extra cost).
//
// Per call: (1) the input is written once as uint8 (x ^ 0x80) into a
// zero-padded NHWC buffer, channels of each group rounded up to 8 bytes;
// (2) the weights are packed in blocks of NR output channels (layout in
// common/adder2d_int8.h); (3) work items (image, group, tile of output
// positions, tile of output channels) run in parallel with at::parallel_for
// (OpenMP); each runs the microkernel over MR positions x NR channels,
// reading the input in place through one pointer per position and one
// offset per tap (implicit GEMM), then writes -S (or its affine map) to
// the NCHW output.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "adder2d.h"
#include "adder2d_int8.h"
#include "adder2d_math.h"

#if defined(__SSE2__)
#define MMPKKD_INT8_SSE2 1
#include <emmintrin.h>
#endif

namespace mmpkkd {
namespace {

constexpr uint8_t kZeroByte = 0x80;  // int8 0 in the uint8 (x ^ 0x80) domain

// Geometry of one call plus the padded-NHWC sizes.
struct Int8Geometry {
  Adder2dShape s;
  int64_t CPGp, NQ, T, Hp, Wp, Cp;
};

int64_t pair_entry(at::IntArrayRef v, const char* name, int64_t i) {
  TORCH_CHECK_VALUE(v.size() == 1 || v.size() == 2, "adder2d_int8: ", name,
                    " must be an int or a pair of ints, got ", v);
  return v.size() == 1 ? v[0] : v[i];
}

Int8Geometry int8_geometry(const at::Tensor& input, const at::Tensor& weight,
                           at::IntArrayRef stride, at::IntArrayRef padding,
                           at::IntArrayRef dilation, int64_t groups) {
  TORCH_CHECK_VALUE(input.dim() == 4,
                    "adder2d_int8: input must be 4-D (N, C_in, H, W), got "
                    "shape ",
                    input.sizes());
  TORCH_CHECK_VALUE(weight.dim() == 4,
                    "adder2d_int8: weight must be 4-D (C_out, C_in/groups, "
                    "kH, kW), got shape ",
                    weight.sizes());
  TORCH_CHECK_VALUE(weight.scalar_type() == at::kChar,
                    "adder2d_int8: weight must be torch.int8, got ",
                    weight.scalar_type());
  TORCH_CHECK_VALUE(input.device().is_cpu() && weight.device().is_cpu(),
                    "adder2d_int8: CPU tensors only, got input on ",
                    input.device(), " and weight on ", weight.device());
  TORCH_CHECK_VALUE(groups >= 1, "adder2d_int8: groups must be >= 1, got ",
                    groups);
  Adder2dShape s;
  s.N = input.size(0);
  s.C = input.size(1);
  s.H = input.size(2);
  s.W = input.size(3);
  s.COUT = weight.size(0);
  s.KH = weight.size(2);
  s.KW = weight.size(3);
  s.SH = pair_entry(stride, "stride", 0);
  s.SW = pair_entry(stride, "stride", 1);
  s.PH = pair_entry(padding, "padding", 0);
  s.PW = pair_entry(padding, "padding", 1);
  s.DH = pair_entry(dilation, "dilation", 0);
  s.DW = pair_entry(dilation, "dilation", 1);
  TORCH_CHECK_VALUE(s.SH >= 1 && s.SW >= 1 && s.DH >= 1 && s.DW >= 1 &&
                        s.PH >= 0 && s.PW >= 0,
                    "adder2d_int8: stride and dilation must be >= 1 and "
                    "padding >= 0");
  s.G = groups;
  TORCH_CHECK_VALUE(s.C % groups == 0 && s.COUT % groups == 0,
                    "adder2d_int8: groups=", groups,
                    " must divide both C_in=", s.C, " and C_out=", s.COUT);
  s.CPG = s.C / groups;
  s.COG = s.COUT / groups;
  TORCH_CHECK_VALUE(weight.size(1) == s.CPG,
                    "adder2d_int8: channel mismatch: weight.shape[1] must be "
                    "C_in/groups = ",
                    s.CPG, ", got ", weight.size(1));
  TORCH_CHECK_VALUE(s.KH >= 1 && s.KW >= 1 && s.COUT >= 1,
                    "adder2d_int8: weight ", weight.sizes(),
                    " has an empty dimension");
  const int64_t hspan = s.H + 2 * s.PH - s.DH * (s.KH - 1) - 1;
  const int64_t wspan = s.W + 2 * s.PW - s.DW * (s.KW - 1) - 1;
  TORCH_CHECK_VALUE(hspan >= 0 && wspan >= 0, "adder2d_int8: input ", s.H,
                    "x", s.W, " is too small for kernel ", s.KH, "x", s.KW,
                    " with this padding and dilation");
  s.HO = hspan / s.SH + 1;
  s.WO = wspan / s.SW + 1;
  s.K = s.CPG * s.KH * s.KW;
  s.P = s.HO * s.WO;
  Int8Geometry g;
  g.s = s;
  g.CPGp = round_up(s.CPG, 8);
  g.NQ = g.CPGp / 8;
  g.T = s.KH * s.KW;
  g.Hp = s.H + 2 * s.PH;
  g.Wp = s.W + 2 * s.PW;
  g.Cp = s.G * g.CPGp;
  return g;
}

// dst[w * dst_pstride + c] = src[c * src_cstride + w] ^ mask for c < nc,
// w < nw: one image row from channel-major to pixel-major, 8 x 8 bytes at a
// time with SSE2 unpacks (baseline x86-64), the ragged edges byte by byte.
void transpose_row(const uint8_t* src, int64_t src_cstride, int64_t nc,
                   int64_t nw, uint8_t* dst, int64_t dst_pstride,
                   uint8_t mask) {
  int64_t c0 = 0;
#ifdef MMPKKD_INT8_SSE2
  const __m128i m = _mm_set1_epi8(static_cast<char>(mask));
  for (; c0 + 8 <= nc; c0 += 8) {
    int64_t w0 = 0;
    for (; w0 + 8 <= nw; w0 += 8) {
      __m128i r[8];
      for (int i = 0; i < 8; ++i)
        r[i] = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(
            src + (c0 + i) * src_cstride + w0));
      // (c0 c1)(c2 c3)(c4 c5)(c6 c7) interleaved per pixel
      const __m128i a0 = _mm_unpacklo_epi8(r[0], r[1]);
      const __m128i a1 = _mm_unpacklo_epi8(r[2], r[3]);
      const __m128i a2 = _mm_unpacklo_epi8(r[4], r[5]);
      const __m128i a3 = _mm_unpacklo_epi8(r[6], r[7]);
      // channels 0-3 / 4-7 of pixels 0-3 / 4-7
      const __m128i b0 = _mm_unpacklo_epi16(a0, a1);
      const __m128i b1 = _mm_unpackhi_epi16(a0, a1);
      const __m128i b2 = _mm_unpacklo_epi16(a2, a3);
      const __m128i b3 = _mm_unpackhi_epi16(a2, a3);
      // channels 0-7 of pixels (0,1), (2,3), (4,5), (6,7)
      const __m128i d[4] = {
          _mm_xor_si128(_mm_unpacklo_epi32(b0, b2), m),
          _mm_xor_si128(_mm_unpackhi_epi32(b0, b2), m),
          _mm_xor_si128(_mm_unpacklo_epi32(b1, b3), m),
          _mm_xor_si128(_mm_unpackhi_epi32(b1, b3), m)};
      for (int j = 0; j < 4; ++j) {
        uint8_t* o = dst + (w0 + 2 * j) * dst_pstride + c0;
        _mm_storel_epi64(reinterpret_cast<__m128i*>(o), d[j]);
        _mm_storel_epi64(reinterpret_cast<__m128i*>(o + dst_pstride),
                         _mm_unpackhi_epi64(d[j], d[j]));
      }
    }
    for (; w0 < nw; ++w0)
      for (int64_t c = c0; c < c0 + 8; ++c)
        dst[w0 * dst_pstride + c] = src[c * src_cstride + w0] ^ mask;
  }
#endif
  for (int64_t c = c0; c < nc; ++c)
    for (int64_t w = 0; w < nw; ++w)
      dst[w * dst_pstride + c] = src[c * src_cstride + w] ^ mask;
}

// Scalar quantisation of one finite value to its uint8 code (int8 code +
// 128): q = clamp(round_half_even(v * inv_scale) + zero_point, -128, 127).
// Non-finite values are caught by the callers (the code written for them is
// never used: the op raises).
inline uint8_t quantize_one(float v, float inv_scale, int32_t zero_point) {
  float r = v * inv_scale;
  r = r < 256.f ? r : 256.f;
  r = r > -256.f ? r : -256.f;  // NaN -> -256 (keeps the cast defined)
  int32_t q = static_cast<int32_t>(std::nearbyint(r)) + zero_point;
  q = q < -128 ? -128 : (q > 127 ? 127 : q);
  return static_cast<uint8_t>(q + 128);
}

// Codes of n contiguous floats (same result as quantize_one). Returns
// false if any of them is NaN or infinite.
bool quantize_run(const float* src, int64_t n, float inv_scale,
                  int32_t zero_point, uint8_t* dst) {
  int64_t i = 0;
  bool finite = true;
#ifdef MMPKKD_INT8_SSE2
  const __m128 inv = _mm_set1_ps(inv_scale);
  const __m128 lo = _mm_set1_ps(-256.f), hi = _mm_set1_ps(256.f);
  const __m128i zp = _mm_set1_epi32(zero_point);
  const __m128i flip = _mm_set1_epi8(static_cast<char>(0x80));
  __m128 nonfinite = _mm_setzero_ps();
  auto conv4 = [&](const float* p) {
    // v - v is NaN exactly for NaN and +-inf; cvtps2dq rounds half to even
    // (MXCSR default), exact here since |r| <= 256
    const __m128 v = _mm_loadu_ps(p);
    const __m128 d = _mm_sub_ps(v, v);
    nonfinite = _mm_or_ps(nonfinite, _mm_cmpunord_ps(d, d));
    __m128 r = _mm_mul_ps(v, inv);
    r = _mm_max_ps(_mm_min_ps(r, hi), lo);
    return _mm_add_epi32(_mm_cvtps_epi32(r), zp);
  };
  for (; i + 16 <= n; i += 16) {
    const __m128i w0 = _mm_packs_epi32(conv4(src + i), conv4(src + i + 4));
    const __m128i w1 =
        _mm_packs_epi32(conv4(src + i + 8), conv4(src + i + 12));
    // signed saturation = the clamp to [-128, 127]; ^ 0x80 = + 128
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm_xor_si128(_mm_packs_epi16(w0, w1), flip));
  }
  for (; i + 4 <= n; i += 4) {
    const __m128i w0 = _mm_packs_epi32(conv4(src + i), zp);
    const int32_t four =
        _mm_cvtsi128_si32(_mm_xor_si128(_mm_packs_epi16(w0, w0), flip));
    std::memcpy(dst + i, &four, 4);
  }
  finite = _mm_movemask_ps(nonfinite) == 0;
#endif
  for (; i < n; ++i) {
    finite = finite && std::isfinite(src[i]);
    dst[i] = quantize_one(src[i], inv_scale, zero_point);
  }
  return finite;
}

// Whether n strided floats are all finite (rows the kernels never read).
bool all_finite(const float* src, int64_t n, int64_t stride) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(src[i * stride])) return false;
  return true;
}

// Input converters: fill `codes` (C x W bytes, channel-major) with the
// uint8 codes of one input row, or point straight at the int8 source.
struct FromInt8 {
  using scalar = int8_t;
  static constexpr uint8_t mask = 0x80;  // int8 -> code on the transpose
  const uint8_t* row(const int8_t* x, int64_t cstride, int64_t C, int64_t W,
                     uint8_t* /*codes*/) const {
    (void)cstride;
    (void)C;
    (void)W;
    return reinterpret_cast<const uint8_t*>(x);
  }
  int64_t row_cstride(int64_t cstride, int64_t /*W*/) const { return cstride; }
  void check_row(const int8_t*, int64_t, int64_t, int64_t) const {}
  void raise_if_nonfinite(const at::Tensor&) const {}
};

struct FromFloat {
  using scalar = float;
  static constexpr uint8_t mask = 0;
  float inv_scale;
  int32_t zero_point;
  std::atomic<bool>* nonfinite;  // set when a NaN or infinity is seen
  const uint8_t* row(const float* x, int64_t cstride, int64_t C, int64_t W,
                     uint8_t* codes) const {
    bool finite = true;
    for (int64_t c = 0; c < C; ++c)
      finite &= quantize_run(x + c * cstride, W, inv_scale, zero_point,
                             codes + c * W);
    if (!finite) nonfinite->store(true, std::memory_order_relaxed);
    return codes;
  }
  int64_t row_cstride(int64_t /*cstride*/, int64_t W) const { return W; }
  // a row no output reads: checked, not quantised
  void check_row(const float* x, int64_t cstride, int64_t C,
                 int64_t W) const {
    for (int64_t c = 0; c < C; ++c)
      if (!all_finite(x + c * cstride, W, 1))
        nonfinite->store(true, std::memory_order_relaxed);
  }
  void raise_if_nonfinite(const at::Tensor& input) const {
    if (!nonfinite->load()) return;
    const int64_t nan = at::isnan(input).sum().item<int64_t>();
    const int64_t inf = at::isinf(input).sum().item<int64_t>();
    TORCH_CHECK_VALUE(false, "adder2d_int8_affine: the input holds ", nan,
                      " NaN and ", inf, " infinite value(s) among ",
                      input.numel(), "; int8 has no code for NaN or infinity. "
                      "Find where the float network produces them (e.g. "
                      "torch.isfinite(x).all() on the input of each layer) "
                      "and fix the data or the model.");
  }
};

// Writes the input (contiguous NCHW) as uint8 codes into the padded NHWC
// buffer xp[N][Hp][Wp][Cp]: border pixels hold pad_byte in the CPG real
// channels of each group and 0x80 in its padding channels (as the weights
// do).
template <typename Src>
void pack_input(const at::Tensor& input, const Int8Geometry& g,
                uint8_t pad_byte, Src src, uint8_t* xp) {
  const Adder2dShape& s = g.s;
  using T = typename Src::scalar;
  const T* x = input.data_ptr<T>();
  const int64_t cstride = s.H * s.W;
  std::vector<uint8_t> pad_pixel(g.Cp, kZeroByte);
  for (int64_t grp = 0; grp < s.G; ++grp)
    std::memset(pad_pixel.data() + grp * g.CPGp, pad_byte, s.CPG);
  const int64_t row_bytes = g.Wp * g.Cp;
  // rows of the padded input that some output reads; the others (e.g.
  // every other row under a 1x1 stride-2 kernel) are never packed
  std::vector<char> used(g.Hp, 0);
  for (int64_t ho = 0; ho < s.HO; ++ho)
    for (int64_t kh = 0; kh < s.KH; ++kh) used[ho * s.SH + kh * s.DH] = 1;
  at::parallel_for(0, s.N * g.Hp, 1, [&](int64_t begin, int64_t end) {
    std::vector<uint8_t> codes(sizeof(T) == 1 ? 0 : s.C * s.W);
    for (int64_t nh = begin; nh < end; ++nh) {
      const int64_t n = nh / g.Hp, hp = nh % g.Hp, h = hp - s.PH;
      const bool pad_row = h < 0 || h >= s.H;
      if (!used[hp]) {
        if (!pad_row) src.check_row(x + n * s.C * cstride + h * s.W, cstride,
                                    s.C, s.W);
        continue;
      }
      uint8_t* row = xp + nh * row_bytes;
      for (int64_t wp = 0; wp < g.Wp; ++wp) {
        if (pad_row || wp < s.PW || wp >= s.PW + s.W)
          std::memcpy(row + wp * g.Cp, pad_pixel.data(), g.Cp);
      }
      if (pad_row) continue;
      uint8_t* px = row + s.PW * g.Cp;
      if (g.CPGp != s.CPG) {  // padding channels of the interior pixels
        for (int64_t w = 0; w < s.W; ++w)
          for (int64_t grp = 0; grp < s.G; ++grp)
            std::memset(px + w * g.Cp + grp * g.CPGp + s.CPG, kZeroByte,
                        g.CPGp - s.CPG);
      }
      const uint8_t* rc =
          src.row(x + n * s.C * cstride + h * s.W, cstride, s.C, s.W,
                  codes.data());
      const int64_t rs = src.row_cstride(cstride, s.W);
      for (int64_t grp = 0; grp < s.G; ++grp)
        transpose_row(rc + grp * s.CPG * rs, rs, s.CPG, s.W,
                      px + grp * g.CPGp, g.Cp, Src::mask);
    }
  });
}

// Packs the int8 weights (C_out, CPG, KH, KW) into blocks of NR output
// channels: wp[((grp * ncb + cb) * T * NQ + t * NQ + q) * NR * 8 + r * 8 + b]
// = code of w[grp * COG + cb * NR + r, 8q + b, t] (0x80 beyond COG / CPG).
// Each channel's (CPG x T) filter is first transposed to (T x CPGp) codes,
// then copied 8 bytes at a time.
void pack_weight(const at::Tensor& weight, const Int8Geometry& g, int64_t NR,
                 int64_t ncb, uint8_t* wp) {
  const Adder2dShape& s = g.s;
  const uint8_t* w = reinterpret_cast<const uint8_t*>(weight.data_ptr<int8_t>());
  const int64_t block = g.T * g.NQ * NR * 8;
  at::parallel_for(0, s.G * ncb, 1, [&](int64_t begin, int64_t end) {
    std::vector<uint8_t> tmp(g.T * g.CPGp, kZeroByte);
    for (int64_t gb = begin; gb < end; ++gb) {
      const int64_t grp = gb / ncb, cb = gb % ncb;
      uint8_t* dst = wp + gb * block;
      const int64_t nc = std::min(NR, s.COG - cb * NR);
      if (nc < NR) std::memset(dst, kZeroByte, block);
      for (int64_t r = 0; r < nc; ++r) {
        const uint8_t* wc = w + (grp * s.COG + cb * NR + r) * s.K;
        transpose_row(wc, g.T, s.CPG, g.T, tmp.data(), g.CPGp, 0x80);
        for (int64_t t = 0; t < g.T; ++t)
          for (int64_t q = 0; q < g.NQ; ++q)
            std::memcpy(dst + ((t * g.NQ + q) * NR + r) * 8,
                        tmp.data() + t * g.CPGp + 8 * q, 8);
      }
    }
  });
}

// Output of one tile: positions [p0, p0 + np) x channels [co0, co0 + nc)
// of image n / group grp, from c[i * NR + r] = sum |.| of position p0 + i
// and channel co0 + r.
struct Int32Writer {
  int32_t* y;
  void operator()(const Adder2dShape& s, int64_t n, int64_t grp, int64_t co0,
                  int64_t nc, int64_t p0, int64_t np, const int64_t* c,
                  int64_t NR) const {
    for (int64_t r = 0; r < nc; ++r) {
      int32_t* dst = y + (n * s.COUT + grp * s.COG + co0 + r) * s.P + p0;
      for (int64_t i = 0; i < np; ++i)
        dst[i] = -static_cast<int32_t>(c[i * NR + r]);
    }
  }
};

struct AffineWriter {
  float* y;
  const float* alpha;
  const float* beta;
  void operator()(const Adder2dShape& s, int64_t n, int64_t grp, int64_t co0,
                  int64_t nc, int64_t p0, int64_t np, const int64_t* c,
                  int64_t NR) const {
    for (int64_t r = 0; r < nc; ++r) {
      const int64_t co = grp * s.COG + co0 + r;
      const float a = alpha[co], b = beta[co];
      float* dst = y + (n * s.COUT + co) * s.P + p0;
      for (int64_t i = 0; i < np; ++i)
        dst[i] = static_cast<float>(-c[i * NR + r]) * a + b;
    }
  }
};

// A slice of the reduction whose packed weights are contiguous: `taps`
// whole taps from t0, or chunks [q0, q0 + nq) of the single tap t0.
struct KSlice {
  int64_t taps, nq, w_offset, off_index;
};

// Cuts the reduction into slices whose weights (NR channels) fit in about
// `budget` bytes, so they stay in L1 while a tile of positions passes.
std::vector<KSlice> k_slices(const Int8Geometry& g, int64_t NR,
                             const std::vector<int64_t>& off,
                             std::vector<int64_t>* slice_off) {
  constexpr int64_t budget = 12 * 1024;
  const int64_t tap_bytes = g.NQ * NR * 8;
  std::vector<KSlice> out;
  slice_off->clear();
  if (tap_bytes <= budget) {
    const int64_t per = std::max<int64_t>(1, budget / tap_bytes);
    for (int64_t t0 = 0; t0 < g.T; t0 += per) {
      const int64_t taps = std::min(per, g.T - t0);
      out.push_back({taps, g.NQ, t0 * tap_bytes,
                     static_cast<int64_t>(slice_off->size())});
      for (int64_t t = t0; t < t0 + taps; ++t) slice_off->push_back(off[t]);
    }
  } else {
    const int64_t per = std::max<int64_t>(1, budget / (NR * 8));
    for (int64_t t = 0; t < g.T; ++t)
      for (int64_t q0 = 0; q0 < g.NQ; q0 += per) {
        out.push_back({1, std::min(per, g.NQ - q0),
                       t * tap_bytes + q0 * NR * 8,
                       static_cast<int64_t>(slice_off->size())});
        slice_off->push_back(off[t] + 8 * q0);
      }
  }
  return out;
}

// Runs the microkernel over every (position block, channel block, slice of
// the reduction) and hands each finished tile to `write`.
template <typename Writer>
void run_int8(const Int8Geometry& g, const uint8_t* xp, const uint8_t* wp,
              const Writer& write) {
  const Adder2dShape& s = g.s;
  const auto& kern = cpu::int8_kernels();
  const int64_t MR = kern.mr, NR = kern.nr;
  const int64_t npb = ceil_div(s.P, MR), ncb = ceil_div(s.COG, NR);
  const int64_t wblock = g.T * g.NQ * NR * 8;
  std::vector<int64_t> off(g.T), slice_off;
  for (int64_t kh = 0; kh < s.KH; ++kh)
    for (int64_t kw = 0; kw < s.KW; ++kw)
      off[kh * s.KW + kw] = (kh * s.DH * g.Wp + kw * s.DW) * g.Cp;
  const std::vector<KSlice> slices = k_slices(g, NR, off, &slice_off);

  // Tiles of ~96 positions (their input stays in cache while every block of
  // NR channels passes over them); split the channels too when there are
  // too few tiles to keep every thread busy.
  const int64_t tile_blocks = std::max<int64_t>(1, 96 / MR);
  const int64_t ntile = ceil_div(npb, tile_blocks);
  const int64_t base_items = s.N * s.G * ntile;
  const int64_t want = 4 * static_cast<int64_t>(at::get_num_threads());
  const int64_t nct =
      std::min(ncb, std::max<int64_t>(1, ceil_div(want, base_items)));
  const int64_t cb_per_tile = ceil_div(ncb, nct);
  const int64_t img_bytes = g.Hp * g.Wp * g.Cp;

  at::parallel_for(0, base_items * nct, 1, [&](int64_t begin, int64_t end) {
    std::vector<const uint8_t*> ptrs(tile_blocks * MR);
    std::vector<int64_t> acc(tile_blocks * MR * NR);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t ct = item % nct, rest = item / nct;
      const int64_t tile = rest % ntile, ng = rest / ntile;
      const int64_t grp = ng % s.G, n = ng / s.G;
      const int64_t pb0 = tile * tile_blocks;
      const int64_t nb = std::min(npb, pb0 + tile_blocks) - pb0;
      const uint8_t* ximg = xp + n * img_bytes + grp * g.CPGp;
      for (int64_t i = 0; i < nb * MR; ++i) {
        // positions past the end repeat the last one (results dropped)
        const int64_t p = std::min(pb0 * MR + i, s.P - 1);
        const int64_t ho = p / s.WO, wo = p % s.WO;
        ptrs[i] = ximg + (ho * s.SH * g.Wp + wo * s.SW) * g.Cp;
      }
      const int64_t cb1 = std::min(ncb, (ct + 1) * cb_per_tile);
      for (int64_t cb = ct * cb_per_tile; cb < cb1; ++cb) {
        const uint8_t* wb = wp + (grp * ncb + cb) * wblock;
        for (size_t k = 0; k < slices.size(); ++k) {
          const KSlice& sl = slices[k];
          for (int64_t b = 0; b < nb; ++b)
            kern.fwd(sl.taps, sl.nq, slice_off.data() + sl.off_index,
                     ptrs.data() + b * MR, wb + sl.w_offset,
                     acc.data() + b * MR * NR, k > 0);
        }
        const int64_t co0 = cb * NR, p0 = pb0 * MR;
        write(s, n, grp, co0, std::min(NR, s.COG - co0), p0,
              std::min(nb * MR, s.P - p0), acc.data(), NR);
      }
    }
  });
}

// Packs input and weights, then runs the kernels into `write`.
template <typename Src, typename Writer>
void adder2d_int8_impl(const at::Tensor& input, const at::Tensor& weight,
                       const Int8Geometry& g, uint8_t pad_byte, Src src,
                       const Writer& write) {
  const auto& kern = cpu::int8_kernels();
  const int64_t ncb = ceil_div(g.s.COG, kern.nr);
  at::Tensor xbuf = at::empty({g.s.N * g.Hp * g.Wp * g.Cp},
                              input.options().dtype(at::kByte));
  at::Tensor wbuf = at::empty({g.s.G * ncb * g.T * g.NQ * kern.nr * 8},
                              input.options().dtype(at::kByte));
  const at::Tensor x = input.contiguous();
  pack_input(x, g, pad_byte, src, xbuf.data_ptr<uint8_t>());
  src.raise_if_nonfinite(x);
  pack_weight(weight.contiguous(), g, kern.nr, ncb, wbuf.data_ptr<uint8_t>());
  run_int8(g, xbuf.data_ptr<uint8_t>(), wbuf.data_ptr<uint8_t>(), write);
}

}  // namespace

at::Tensor adder2d_int8_cpu(const at::Tensor& input, const at::Tensor& weight,
                            at::IntArrayRef stride, at::IntArrayRef padding,
                            at::IntArrayRef dilation, int64_t groups,
                            int64_t pad_value) {
  TORCH_CHECK_VALUE(input.scalar_type() == at::kChar,
                    "adder2d_int8: input must be torch.int8, got ",
                    input.scalar_type());
  TORCH_CHECK_VALUE(pad_value >= -128 && pad_value <= 127,
                    "adder2d_int8: pad_value must be an int8 value, got ",
                    pad_value);
  const Int8Geometry g =
      int8_geometry(input, weight, stride, padding, dilation, groups);
  TORCH_CHECK_VALUE(g.s.K <= std::numeric_limits<int32_t>::max() / 255,
                    "adder2d_int8: C_in/groups * kH * kW = ", g.s.K,
                    " is too large for an exact int32 result");
  at::Tensor out = at::empty({g.s.N, g.s.COUT, g.s.HO, g.s.WO},
                             input.options().dtype(at::kInt));
  if (out.numel() == 0) return out;
  const uint8_t pad_byte = static_cast<uint8_t>(static_cast<int8_t>(pad_value)) ^ 0x80;
  adder2d_int8_impl(input, weight, g, pad_byte, FromInt8{},
                    Int32Writer{out.data_ptr<int32_t>()});
  return out;
}

at::Tensor adder2d_int8_affine_cpu(const at::Tensor& input,
                                   const at::Tensor& weight, double inv_scale,
                                   int64_t zero_point, const at::Tensor& alpha,
                                   const at::Tensor& beta,
                                   at::IntArrayRef stride,
                                   at::IntArrayRef padding,
                                   at::IntArrayRef dilation, int64_t groups) {
  TORCH_CHECK_VALUE(input.scalar_type() == at::kFloat,
                    "adder2d_int8_affine: input must be float32, got ",
                    input.scalar_type());
  TORCH_CHECK_VALUE(zero_point >= -128 && zero_point <= 127,
                    "adder2d_int8_affine: zero_point must be an int8 value, "
                    "got ",
                    zero_point);
  TORCH_CHECK_VALUE(inv_scale > 0, "adder2d_int8_affine: inv_scale must be "
                    "positive, got ", inv_scale);
  const Int8Geometry g =
      int8_geometry(input, weight, stride, padding, dilation, groups);
  for (const at::Tensor* t : {&alpha, &beta})
    TORCH_CHECK_VALUE(t->dim() == 1 && t->size(0) == g.s.COUT &&
                          t->scalar_type() == at::kFloat && t->device().is_cpu(),
                      "adder2d_int8_affine: alpha and beta must be float32 "
                      "CPU tensors of shape (C_out,) = (", g.s.COUT, ",)");
  at::Tensor out = at::empty({g.s.N, g.s.COUT, g.s.HO, g.s.WO},
                             input.options());
  if (out.numel() == 0) return out;
  const at::Tensor a = alpha.contiguous(), b = beta.contiguous();
  const uint8_t pad_byte = static_cast<uint8_t>(static_cast<int8_t>(zero_point)) ^ 0x80;
  std::atomic<bool> nonfinite{false};
  adder2d_int8_impl(
      input, weight, g, pad_byte,
      FromFloat{static_cast<float>(inv_scale), static_cast<int32_t>(zero_point),
                &nonfinite},
      AffineWriter{out.data_ptr<float>(), a.data_ptr<float>(),
                   b.data_ptr<float>()});
  return out;
}

}  // namespace mmpkkd
