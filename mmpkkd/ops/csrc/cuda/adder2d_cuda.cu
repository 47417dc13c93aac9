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
// Weight gradient: the GEMM identity dW = dY X_col^T - W * rowsum(dY), with
//   X_col built in chunks of images (bounded workspace) and cuBLAS
//   (at::baddbmm over groups) in full float32: TF32 is switched off for the
//   call whatever torch.backends.cuda.matmul allows (it costs dW ~1e-3).
// Every launch is skipped when its grid would be empty (zero-size inputs;
// CUDA rejects a zero-block grid).
#include <ATen/ATen.h>
#include <ATen/Context.h>
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

// cols[k][(n - n0) * P + p] = X_pad[n, ci, hi, wi] for images [n0, n0 + nb)
// and all C*KH*KW rows k = (ci, kh, kw) (group g owns rows [g*K, (g+1)*K)).
template <typename T>
__global__ void im2col_kernel(const T* __restrict__ x, T* __restrict__ cols,
                              Adder2dShape s, int64_t n0, int64_t nb) {
  const int64_t width = nb * s.P;
  const int64_t total = s.C * s.KH * s.KW * width;
  const int64_t khw = s.KH * s.KW;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) +
                   threadIdx.x;
       e < total; e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t k = e / width, c = e % width;
    const int64_t n = n0 + c / s.P, p = c % s.P;
    const int64_t ci = k / khw, t = k % khw;
    const int64_t hi = (p / s.WO) * s.SH - s.PH + (t / s.KW) * s.DH;
    const int64_t wi = (p % s.WO) * s.SW - s.PW + (t % s.KW) * s.DW;
    cols[e] = (hi >= 0 && hi < s.H && wi >= 0 && wi < s.W)
                  ? x[((n * s.C + ci) * s.H + hi) * s.W + wi]
                  : T(0);
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

// Bound on the im2col workspace of the weight gradient.
constexpr int64_t kWorkspaceBytes = 256LL << 20;

// Full-float32 cuBLAS for the scope: torch lets cuBLAS round float32
// operands to TF32 when torch.backends.cuda.matmul allows it, which would
// cost the weight gradient ~1e-3 relative precision. The setting is global,
// so it is switched off only while this op's GEMMs are enqueued and put back
// (also on an exception) afterwards.
class FullFloat32Matmul {
 public:
  FullFloat32Matmul() : was_tf32_(at::globalContext().allowTF32CuBLAS()) {
    if (was_tf32_) at::globalContext().setAllowTF32CuBLAS(false);
  }
  ~FullFloat32Matmul() {
    if (was_tf32_) at::globalContext().setAllowTF32CuBLAS(true);
  }
  FullFloat32Matmul(const FullFloat32Matmul&) = delete;
  FullFloat32Matmul& operator=(const FullFloat32Matmul&) = delete;

 private:
  const bool was_tf32_;
};

template <typename T>
at::Tensor backward_weight(const at::Tensor& gy, const at::Tensor& x,
                           const at::Tensor& w, const Adder2dShape& s,
                           cudaStream_t stream) {
  const int64_t rows = s.C * s.KH * s.KW;  // = G * K
  const int64_t per_image = rows * s.P * static_cast<int64_t>(sizeof(T));
  const int64_t nb = std::max<int64_t>(
      1, std::min<int64_t>(s.N, kWorkspaceBytes / std::max<int64_t>(
                                                       1, per_image)));
  at::Tensor grad_w = at::zeros({s.G, s.COG, s.K}, w.options());
  at::Tensor cols = at::empty({rows * nb * s.P}, x.options());
  const FullFloat32Matmul full_fp32;
  for (int64_t n0 = 0; n0 < s.N; n0 += nb) {
    const int64_t nc = std::min(nb, s.N - n0);
    const int64_t total = rows * nc * s.P;
    if (total == 0) continue;  // (the caller already skips K = 0, N = 0)
    const int threads = 256;
    const int64_t blocks =
        std::min<int64_t>(ceil_div(total, threads), 65535LL * 8);
    im2col_kernel<T><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
        x.data_ptr<T>(), cols.data_ptr<T>(), s, n0, nc);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    // the first rows*nc*P elements hold this chunk's (rows, nc*P) matrix
    at::Tensor c = cols.narrow(0, 0, rows * nc * s.P)
                       .view({s.G, s.K, nc * s.P});
    // dY chunk as (G, COG, nc*P): channels first, images x positions after
    at::Tensor d = gy.narrow(0, n0, nc)
                       .view({nc, s.COUT, s.P})
                       .transpose(0, 1)
                       .reshape({s.G, s.COG, nc * s.P});
    grad_w.baddbmm_(d, c.transpose(1, 2));
  }
  at::Tensor rowsum = gy.sum({0, 2, 3});
  grad_w = grad_w.view_as(w);
  grad_w.sub_(w * rowsum.view({-1, 1, 1, 1}));
  return grad_w;
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
