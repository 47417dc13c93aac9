// CUDA kernels of adder2d.
//
// Forward: an SGEMM-style tiled kernel over the implicit im2col of X.
//   Per group g: C[co, col] = -sum_k |W[co, k] - X_col[k, col]| with
//   col = (n, ho, wo) over the whole batch. A block computes a BM x BN tile;
//   each K step stages a BK x BM slice of W and a BK x BN slice of X_col
//   (gathered straight from X, zero for padded taps) in shared memory, and
//   each thread accumulates a TM x TN register block with acc += |a - b|.
// Input gradient: the same tiling on the "transposed" problem, gathering
//   instead of scattering so no col2im and no atomics are needed:
//   dX[n, ci, hi, wi] = sum_{co, kh, kw} HardTanh(W[co, ci, kh, kw] - x)
//                       * dY[n, co, ho, wo]
//   over the taps (kh, kw) whose output position (ho, wo) exists; x is
//   X[n, ci, hi, wi] itself, so it is loaded once per output element.
//   Rows are (ci), columns (n, hi, wi), reduction (co, kh, kw).
// Weight gradient: the same tiling with rows (co), columns k = (ci, kh, kw)
//   and the reduction over (n, ho, wo) split into chunks, computing
//   sum (X_col - W) * dY directly in the tensor's precision (no cuBLAS, so
//   no TF32 and no process-global setting touched).
// Every launch is skipped when its grid would be empty (zero-size inputs;
// CUDA rejects a zero-block grid).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>

#include "adder2d.h"
#include "adder2d_math.h"

namespace mmpkkd {
namespace {

constexpr int kThreads = 256;

// Tile shape: BM rows x BN columns per block, BK reduction slice, each
// thread TM x TN outputs at rows ty + i*(BM/TM) and columns tx + j*(BN/TN).
template <int BM_, int BN_, int BK_, int TM_, int TN_>
struct Tile {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, TM = TM_, TN = TN_;
  static constexpr int TX = BN / TN, TY = BM / TM;
  static_assert(TX * TY == kThreads, "tile must use kThreads threads");
  static_assert(kThreads % BN == 0, "each thread loads one fixed column");
};
using TileLarge = Tile<64, 64, 8, 4, 4>;   // many output channels
using TileSmall = Tile<16, 256, 8, 1, 16>;  // few (e.g. depthwise)

template <typename T, typename TL>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(const T* __restrict__ x, const T* __restrict__ w,
                   const T* __restrict__ bias, T* __restrict__ y,
                   Adder2dShape s) {
  constexpr int BM = TL::BM, BN = TL::BN, BK = TL::BK, TM = TL::TM,
                TN = TL::TN, TX = TL::TX, TY = TL::TY;
  __shared__ T As[BK][BM];
  __shared__ T Bs[BK][BN];

  const int tid = threadIdx.x;
  const int tx = tid % TX, ty = tid / TX;
  const int64_t g = blockIdx.z;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * BM;
  const int64_t col0 = static_cast<int64_t>(blockIdx.x) * BN;
  const int64_t ncols = s.N * s.P;
  const int64_t khw = s.KH * s.KW;

  // The column this thread gathers for the B tile (fixed over k).
  const int b_col = tid % BN;
  const int b_row0 = tid / BN;
  constexpr int kRowStep = kThreads / BN;
  const int64_t col = col0 + b_col;
  const bool col_ok = col < ncols;
  const int64_t n = col_ok ? col / s.P : 0;
  const int64_t p = col_ok ? col % s.P : 0;
  const int64_t hbase = (p / s.WO) * s.SH - s.PH;
  const int64_t wbase = (p % s.WO) * s.SW - s.PW;
  const T* xn = x + (n * s.C + g * s.CPG) * s.H * s.W;
  const T* wg = w + g * s.COG * s.K;

  T acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = T(0);

  for (int64_t k0 = 0; k0 < s.K; k0 += BK) {
    // W slice; rows/k out of range read as 0 (|0 - 0| adds nothing)
    for (int e = tid; e < BM * BK; e += kThreads) {
      const int m = e / BK, kk = e % BK;
      const int64_t co = m0 + m, k = k0 + kk;
      As[kk][m] = (co < s.COG && k < s.K) ? wg[co * s.K + k] : T(0);
    }
    // X_col slice gathered from X; padded taps are 0
    for (int kk = b_row0; kk < BK; kk += kRowStep) {
      const int64_t k = k0 + kk;
      T v = T(0);
      if (col_ok && k < s.K) {
        const int64_t ci = k / khw, r = k % khw;
        const int64_t hi = hbase + (r / s.KW) * s.DH;
        const int64_t wi = wbase + (r % s.KW) * s.DW;
        if (hi >= 0 && hi < s.H && wi >= 0 && wi < s.W)
          v = xn[(ci * s.H + hi) * s.W + wi];
      }
      Bs[kk][b_col] = v;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      T a[TM], b[TN];
#pragma unroll
      for (int i = 0; i < TM; ++i) a[i] = As[kk][ty + i * TY];
#pragma unroll
      for (int j = 0; j < TN; ++j) b[j] = Bs[kk][tx + j * TX];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] += absdiff(a[i], b[j]);
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int64_t co = m0 + ty + i * TY;
    if (co >= s.COG) continue;
    const int64_t oc = g * s.COG + co;
    const T bv = bias != nullptr ? bias[oc] : T(0);
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int64_t c = col0 + tx + j * TX;
      if (c >= ncols) continue;
      const int64_t nn = c / s.P, pp = c % s.P;
      y[(nn * s.COUT + oc) * s.P + pp] = bv - acc[i][j];
    }
  }
}

template <typename T, typename TL>
__global__ void __launch_bounds__(kThreads)
    backward_input_kernel(const T* __restrict__ gy, const T* __restrict__ x,
                          const T* __restrict__ w, T* __restrict__ gx,
                          Adder2dShape s) {
  constexpr int BM = TL::BM, BN = TL::BN, BK = TL::BK, TM = TL::TM,
                TN = TL::TN, TX = TL::TX, TY = TL::TY;
  __shared__ T As[BK][BM];
  __shared__ T Bs[BK][BN];

  const int tid = threadIdx.x;
  const int tx = tid % TX, ty = tid / TX;
  const int64_t g = blockIdx.z;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * BM;  // ci in group
  const int64_t col0 = static_cast<int64_t>(blockIdx.x) * BN;
  const int64_t hw = s.H * s.W;
  const int64_t ncols = s.N * hw;  // input pixels (n, hi, wi)
  const int64_t khw = s.KH * s.KW;
  const int64_t kred = s.COG * khw;  // reduction over (co, kh, kw)

  // The input pixel this thread gathers dY for (fixed over the reduction).
  const int b_col = tid % BN;
  const int b_row0 = tid / BN;
  constexpr int kRowStep = kThreads / BN;
  const int64_t col = col0 + b_col;
  const bool col_ok = col < ncols;
  const int64_t bn = col_ok ? col / hw : 0;
  const int64_t bpix = col_ok ? col % hw : 0;
  const int64_t bhi = bpix / s.W, bwi = bpix % s.W;
  const T* gyn = gy + (bn * s.COUT + g * s.COG) * s.P;

  // Input values of this thread's outputs, kept in registers.
  T xv[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int64_t ci = m0 + ty + i * TY;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int64_t c = col0 + tx + j * TX;
      xv[i][j] = (ci < s.CPG && c < ncols)
                     ? x[((c / hw) * s.C + g * s.CPG + ci) * hw + c % hw]
                     : T(0);
    }
  }
  T acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = T(0);

  for (int64_t r0 = 0; r0 < kred; r0 += BK) {
    // weights A[ci][(co, kh, kw)] = W[g*COG + co, ci, kh, kw]
    for (int e = tid; e < BM * BK; e += kThreads) {
      const int m = e / BK, kk = e % BK;
      const int64_t ci = m0 + m, r = r0 + kk;
      T v = T(0);
      if (ci < s.CPG && r < kred) {
        const int64_t co = r / khw, t = r % khw;
        v = w[((g * s.COG + co) * s.CPG + ci) * khw + t];
      }
      As[kk][m] = v;
    }
    // B[(co, kh, kw)][pixel] = dY at the output position the tap maps the
    // pixel to, or 0 if there is none (so HardTanh(.) * 0 adds nothing)
    for (int kk = b_row0; kk < BK; kk += kRowStep) {
      const int64_t r = r0 + kk;
      T v = T(0);
      if (col_ok && r < kred) {
        const int64_t co = r / khw, t = r % khw;
        const int64_t hnum = bhi + s.PH - (t / s.KW) * s.DH;
        const int64_t wnum = bwi + s.PW - (t % s.KW) * s.DW;
        if (hnum >= 0 && wnum >= 0 && hnum % s.SH == 0 && wnum % s.SW == 0) {
          const int64_t ho = hnum / s.SH, wo = wnum / s.SW;
          if (ho < s.HO && wo < s.WO) v = gyn[co * s.P + ho * s.WO + wo];
        }
      }
      Bs[kk][b_col] = v;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      T a[TM], b[TN];
#pragma unroll
      for (int i = 0; i < TM; ++i) a[i] = As[kk][ty + i * TY];
#pragma unroll
      for (int j = 0; j < TN; ++j) b[j] = Bs[kk][tx + j * TX];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j)
          acc[i][j] += hardtanh(a[i] - xv[i][j]) * b[j];
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int64_t ci = m0 + ty + i * TY;
    if (ci >= s.CPG) continue;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int64_t c = col0 + tx + j * TX;
      if (c >= ncols) continue;
      gx[((c / hw) * s.C + g * s.CPG + ci) * hw + c % hw] = acc[i][j];
    }
  }
}

// Weight gradient, AdderNet's full-precision form computed directly:
//   dW[g*COG + co, k] = sum_r (X_col[k, r] - W[g*COG + co, k]) * dY[co, r]
// over r = (n, ho, wo). Rows are (co), columns k = (ci, kh, kw), and the
// reduction over r is split into `split` chunks (blockIdx.z = g * split +
// chunk) so that even late layers with few output tiles fill the GPU; each
// chunk writes its partial sums to part[chunk], summed afterwards (a fixed
// order: deterministic, no atomics). No cuBLAS, so no TF32 whatever torch's
// matmul precision settings say, and no cancellation from the expanded
// GEMM form (dY X^T - W rowsum(dY)).
template <typename T, typename TL>
__global__ void __launch_bounds__(kThreads)
    backward_weight_kernel(const T* __restrict__ gy, const T* __restrict__ x,
                           const T* __restrict__ w, T* __restrict__ part,
                           Adder2dShape s, int64_t split, int64_t chunk) {
  constexpr int BM = TL::BM, BN = TL::BN, BK = TL::BK, TM = TL::TM,
                TN = TL::TN, TX = TL::TX, TY = TL::TY;
  __shared__ T As[BK][BM];  // dY slice: (r, co)
  __shared__ T Bs[BK][BN];  // X_col slice: (r, k)

  const int tid = threadIdx.x;
  const int tx = tid % TX, ty = tid / TX;
  const int64_t g = blockIdx.z / split, part_idx = blockIdx.z % split;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * BM;
  const int64_t c0 = static_cast<int64_t>(blockIdx.x) * BN;
  const int64_t total = s.N * s.P;
  const int64_t r_begin = part_idx * chunk;
  const int64_t r_end = r_begin + chunk < total ? r_begin + chunk : total;
  const int64_t khw = s.KH * s.KW;
  const int64_t chw = s.C * s.H * s.W;

  // The k column this thread gathers for the B tile (fixed over r).
  const int b_col = tid % BN;
  const int b_row0 = tid / BN;
  constexpr int kRowStep = kThreads / BN;
  const int64_t bk = c0 + b_col;
  const bool bk_ok = bk < s.K;
  const int64_t bci = bk_ok ? bk / khw : 0, bt = bk_ok ? bk % khw : 0;
  const int64_t hoff = (bt / s.KW) * s.DH - s.PH;
  const int64_t woff = (bt % s.KW) * s.DW - s.PW;
  const T* xc = x + (g * s.CPG + bci) * s.H * s.W;
  const T* gyg = gy + g * s.COG * s.P;

  // W of this thread's outputs, kept in registers.
  T wv[TM][TN], acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int64_t co = m0 + ty + i * TY;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int64_t k = c0 + tx + j * TX;
      wv[i][j] = (co < s.COG && k < s.K) ? w[(g * s.COG + co) * s.K + k]
                                         : T(0);
      acc[i][j] = T(0);
    }
  }

  for (int64_t r0 = r_begin; r0 < r_end; r0 += BK) {
    // dY slice; rows/r out of range read as 0 (they add nothing)
    for (int e = tid; e < BM * BK; e += kThreads) {
      const int m = e / BK, kk = e % BK;
      const int64_t co = m0 + m, r = r0 + kk;
      T v = T(0);
      if (co < s.COG && r < r_end) {
        const int64_t n = r / s.P, p = r % s.P;
        v = gyg[(n * s.COUT + co) * s.P + p];
      }
      As[kk][m] = v;
    }
    // X_col slice gathered from X; padded taps are 0
    for (int kk = b_row0; kk < BK; kk += kRowStep) {
      const int64_t r = r0 + kk;
      T v = T(0);
      if (bk_ok && r < r_end) {
        const int64_t n = r / s.P, p = r % s.P;
        const int64_t hi = (p / s.WO) * s.SH + hoff;
        const int64_t wi = (p % s.WO) * s.SW + woff;
        if (hi >= 0 && hi < s.H && wi >= 0 && wi < s.W)
          v = xc[n * chw + hi * s.W + wi];
      }
      Bs[kk][b_col] = v;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      T a[TM], b[TN];
#pragma unroll
      for (int i = 0; i < TM; ++i) a[i] = As[kk][ty + i * TY];
#pragma unroll
      for (int j = 0; j < TN; ++j) b[j] = Bs[kk][tx + j * TX];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] += (b[j] - wv[i][j]) * a[i];
    }
    __syncthreads();
  }

  T* out = part + (part_idx * s.COUT + g * s.COG) * s.K;
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int64_t co = m0 + ty + i * TY;
    if (co >= s.COG) continue;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int64_t k = c0 + tx + j * TX;
      if (k < s.K) out[co * s.K + k] = acc[i][j];
    }
  }
}

bool empty_grid(const dim3& grid) {
  return grid.x == 0 || grid.y == 0 || grid.z == 0;
}

template <typename TL>
dim3 tile_grid(int64_t ncols, int64_t nrows, int64_t groups) {
  const int64_t gx = ceil_div(ncols, TL::BN), gy = ceil_div(nrows, TL::BM);
  TORCH_CHECK(gx <= 2147483647LL && gy <= 65535 && groups <= 65535,
              "adder2d: problem too large for one CUDA launch");
  return dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy),
              static_cast<unsigned>(groups));
}

template <typename T>
void launch_forward(const at::Tensor& x, const at::Tensor& w,
                    const at::Tensor& bias, at::Tensor& y,
                    const Adder2dShape& s, cudaStream_t stream) {
  const T* b = bias.defined() ? bias.data_ptr<T>() : nullptr;
  const int64_t ncols = s.N * s.P;
  if (s.COG <= 16) {
    const dim3 grid = tile_grid<TileSmall>(ncols, s.COG, s.G);
    if (empty_grid(grid)) return;
    forward_kernel<T, TileSmall><<<grid, kThreads, 0, stream>>>(
        x.data_ptr<T>(), w.data_ptr<T>(), b, y.data_ptr<T>(), s);
  } else {
    const dim3 grid = tile_grid<TileLarge>(ncols, s.COG, s.G);
    if (empty_grid(grid)) return;
    forward_kernel<T, TileLarge><<<grid, kThreads, 0, stream>>>(
        x.data_ptr<T>(), w.data_ptr<T>(), b, y.data_ptr<T>(), s);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T>
void launch_backward_input(const at::Tensor& gy, const at::Tensor& x,
                           const at::Tensor& w, at::Tensor& gx,
                           const Adder2dShape& s, cudaStream_t stream) {
  const int64_t ncols = s.N * s.H * s.W;
  if (s.CPG <= 16) {
    const dim3 grid = tile_grid<TileSmall>(ncols, s.CPG, s.G);
    if (empty_grid(grid)) return;
    backward_input_kernel<T, TileSmall><<<grid, kThreads, 0, stream>>>(
        gy.data_ptr<T>(), x.data_ptr<T>(), w.data_ptr<T>(), gx.data_ptr<T>(),
        s);
  } else {
    const dim3 grid = tile_grid<TileLarge>(ncols, s.CPG, s.G);
    if (empty_grid(grid)) return;
    backward_input_kernel<T, TileLarge><<<grid, kThreads, 0, stream>>>(
        gy.data_ptr<T>(), x.data_ptr<T>(), w.data_ptr<T>(), gx.data_ptr<T>(),
        s);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// Number of chunks the weight gradient's reduction over (n, ho, wo) is
// split into: enough blocks for about 4 per multiprocessor, each chunk at
// least 16 reduction slices long, and gridDim.z = G * split <= 65535.
int64_t weight_grad_split(int64_t tiles, int64_t groups, int64_t total,
                          int64_t slice) {
  int sms = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(
      &sms, cudaDevAttrMultiProcessorCount, c10::cuda::current_device()));
  int64_t split = ceil_div(4LL * sms, std::max<int64_t>(1, tiles * groups));
  split = std::min(split, std::max<int64_t>(1, total / (16 * slice)));
  split = std::min(split, std::max<int64_t>(1, 65535 / groups));
  return std::max<int64_t>(1, split);
}

template <typename T, typename TL>
at::Tensor launch_backward_weight(const at::Tensor& gy, const at::Tensor& x,
                                  const at::Tensor& w, const Adder2dShape& s,
                                  cudaStream_t stream) {
  const int64_t total = s.N * s.P;
  const int64_t gx = ceil_div(s.K, TL::BN), gyb = ceil_div(s.COG, TL::BM);
  TORCH_CHECK(gx <= 2147483647LL && gyb <= 65535 && s.G <= 65535,
              "adder2d: problem too large for one CUDA launch");
  int64_t split = weight_grad_split(gx * gyb, s.G, total, TL::BK);
  const int64_t chunk = round_up(ceil_div(total, split), TL::BK);
  split = ceil_div(total, chunk);
  at::Tensor part = at::empty({split, s.COUT, s.K}, w.options());
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gyb),
                  static_cast<unsigned>(s.G * split));
  backward_weight_kernel<T, TL><<<grid, kThreads, 0, stream>>>(
      gy.data_ptr<T>(), x.data_ptr<T>(), w.data_ptr<T>(), part.data_ptr<T>(),
      s, split, chunk);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  at::Tensor grad_w = split == 1 ? part[0] : part.sum(0);
  return grad_w.view_as(w);
}

template <typename T>
at::Tensor backward_weight(const at::Tensor& gy, const at::Tensor& x,
                           const at::Tensor& w, const Adder2dShape& s,
                           cudaStream_t stream) {
  if (s.COG <= 16)
    return launch_backward_weight<T, TileSmall>(gy, x, w, s, stream);
  return launch_backward_weight<T, TileLarge>(gy, x, w, s, stream);
}

}  // namespace

at::Tensor adder2d_forward_cuda(const at::Tensor& input,
                                const at::Tensor& weight,
                                const at::Tensor& bias,
                                const Adder2dShape& s) {
  const c10::cuda::CUDAGuard guard(input.device());
  at::Tensor out = at::empty({s.N, s.COUT, s.HO, s.WO}, input.options());
  if (out.numel() == 0) return out;
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "adder2d_forward_cuda", [&] {
    launch_forward<scalar_t>(input, weight, bias, out, s, stream);
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> adder2d_backward_cuda(
    const at::Tensor& grad_out, const at::Tensor& input,
    const at::Tensor& weight, const Adder2dShape& s, bool need_input,
    bool need_weight) {
  const c10::cuda::CUDAGuard guard(input.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor grad_x, grad_w;
  if (need_input) {
    grad_x = at::empty_like(input);
    if (grad_x.numel() > 0 && grad_out.numel() == 0) grad_x.zero_();
  }
  if (grad_out.numel() == 0) {
    if (need_weight) grad_w = at::zeros_like(weight);
    return std::make_tuple(grad_x, grad_w);
  }
  AT_DISPATCH_FLOATING_TYPES(
      input.scalar_type(), "adder2d_backward_cuda", [&] {
        if (need_input && grad_x.numel() > 0)
          launch_backward_input<scalar_t>(grad_out, input, weight, grad_x, s,
                                          stream);
        if (need_weight)
          grad_w = backward_weight<scalar_t>(grad_out, input, weight, s,
                                             stream);
      });
  return std::make_tuple(grad_x, grad_w);
}

}  // namespace mmpkkd
