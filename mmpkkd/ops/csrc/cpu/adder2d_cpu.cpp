// CPU driver of adder2d: im2col into small panels, register-blocked
// microkernels (adder2d_cpu_kernels.cpp), col2im, and the weight gradient
// through the platform BLAS.
//
// Forward, per image n and group g (C = Y[n, g] viewed as COG x P):
//   the output columns are cut into panels of NR positions; each panel is
//   im2col'ed into a packed K x NR buffer and combined with the weight rows
//   (read in place, MR rows at a time) in KC-long slices (cache blocking
//   over K). Work items are (n, g, panel), spread over threads with
//   at::parallel_for, so batch 1 uses every core too. Temporaries: one
//   K x NR panel and one COG x NR block per thread.
// Backward, per (n, g):
//   X_col (K x P, row stride ld) is rebuilt once and used twice:
//   dW += dY * X_col^T (at::addmm_, BLAS), then dW -= W * rowsum(dY) at
//   the end (AdderNet's dW = sum (X_col - W) dY, written as a GEMM);
//   dX_col = sum_co HardTanh(W - X_col) * dY (microkernel), then col2im.
//   Images run in parallel (per-thread buffers and dW accumulators) when
//   there are enough of them and the accumulators are small; otherwise the
//   panels of one image run in parallel (col2im over input channels, dW
//   through multi-threaded BLAS). No temporary scales with N * K * P.
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "adder2d.h"
#include "adder2d_cpu_kernels.h"
#include "adder2d_math.h"

namespace mmpkkd {
namespace {

// One run of consecutive output positions on the same output row.
struct RowSegment {
  int64_t ho, wo0, len, offset;
};

// Positions [p0, p0 + np) split into output-row segments.
inline int64_t split_rows(const Adder2dShape& s, int64_t p0, int64_t np,
                          RowSegment* segs) {
  int64_t count = 0, done = 0;
  while (done < np) {
    const int64_t p = p0 + done;
    const int64_t ho = p / s.WO, wo = p % s.WO;
    const int64_t len = std::min(s.WO - wo, np - done);
    segs[count++] = {ho, wo, len, done};
    done += len;
  }
  return count;
}

// Range [lo, hi) of j in [0, len) with 0 <= base + j*stride < limit.
inline void valid_range(int64_t base, int64_t stride, int64_t limit,
                        int64_t len, int64_t* lo, int64_t* hi) {
  int64_t a = base >= 0 ? 0 : ceil_div(-base, stride);
  int64_t b = base > limit - 1 ? 0 : (limit - 1 - base) / stride + 1;
  a = std::min(a, len);
  b = std::max(a, std::min(b, len));
  *lo = a;
  *hi = b;
}

// im2col of output positions [p0, p0 + np) of one image/group:
//   dst[k * row_stride + j] = X_pad[ci, hi(p0 + j, kh), wi(p0 + j, kw)]
// for k = (ci, kh, kw) < K, j < width; columns j >= np are zero-filled.
// x points at channel 0 of the group (CPG x H x W, contiguous). Everything
// that does not depend on the channel (row segments, the input row of each
// (segment, kh), the valid column range of each (segment, kw)) is computed
// once up front, so the channel loop is plain copies.
template <typename T>
void im2col_columns(const T* x, const Adder2dShape& s, int64_t p0,
                    int64_t np, int64_t width, T* dst, int64_t row_stride) {
  // per-thread scratch, reused across calls (this runs once per panel)
  thread_local std::vector<RowSegment> segs;
  thread_local std::vector<int64_t> table;
  if (static_cast<int64_t>(segs.size()) < np + 1) segs.resize(np + 1);
  const int64_t nseg = split_rows(s, p0, np, segs.data());
  if (static_cast<int64_t>(table.size()) < nseg * (s.KH + 3 * s.KW))
    table.resize(nseg * (s.KH + 3 * s.KW));
  // hrow[t*KH + kh]: input row offset (hi*W) or -1 when hi is padding
  int64_t* hrow = table.data();
  // wcol[(t*KW + kw)*3 + {0,1,2}]: wbase, first and end valid j
  int64_t* wcol = hrow + nseg * s.KH;
  for (int64_t t = 0; t < nseg; ++t) {
    for (int64_t kh = 0; kh < s.KH; ++kh) {
      const int64_t hi = segs[t].ho * s.SH - s.PH + kh * s.DH;
      hrow[t * s.KH + kh] = (hi < 0 || hi >= s.H) ? -1 : hi * s.W;
    }
    for (int64_t kw = 0; kw < s.KW; ++kw) {
      int64_t* e = &wcol[(t * s.KW + kw) * 3];
      e[0] = segs[t].wo0 * s.SW - s.PW + kw * s.DW;
      valid_range(e[0], s.SW, s.W, segs[t].len, &e[1], &e[2]);
    }
  }
  int64_t k = 0;
  for (int64_t ci = 0; ci < s.CPG; ++ci) {
    const T* xc = x + ci * s.H * s.W;
    for (int64_t kh = 0; kh < s.KH; ++kh) {
      for (int64_t kw = 0; kw < s.KW; ++kw, ++k) {
        T* row = dst + k * row_stride;
        for (int64_t t = 0; t < nseg; ++t) {
          const RowSegment& sg = segs[t];
          T* out = row + sg.offset;
          const int64_t roff = hrow[t * s.KH + kh];
          if (roff < 0) {
            for (int64_t j = 0; j < sg.len; ++j) out[j] = T(0);
            continue;
          }
          const int64_t* e = &wcol[(t * s.KW + kw) * 3];
          const int64_t lo = e[1], up = e[2];
          const T* src = xc + roff + e[0];
          for (int64_t j = 0; j < lo; ++j) out[j] = T(0);
          if (s.SW == 1) {
            for (int64_t j = lo; j < up; ++j) out[j] = src[j];
          } else {
            for (int64_t j = lo; j < up; ++j) out[j] = src[j * s.SW];
          }
          for (int64_t j = up; j < sg.len; ++j) out[j] = T(0);
        }
        for (int64_t j = np; j < width; ++j) row[j] = T(0);
      }
    }
  }
}

// col2im of one image/group for input channels [c0, c1):
//   dx[ci, hi, wi] += cols[k * ld + p] over the taps that hit the image.
template <typename T>
void col2im_channels(const T* cols, int64_t ld, const Adder2dShape& s,
                     int64_t c0, int64_t c1, T* dx) {
  for (int64_t ci = c0; ci < c1; ++ci) {
    T* dxc = dx + ci * s.H * s.W;
    for (int64_t kh = 0; kh < s.KH; ++kh) {
      for (int64_t kw = 0; kw < s.KW; ++kw) {
        const int64_t k = (ci * s.KH + kh) * s.KW + kw;
        const int64_t wbase = kw * s.DW - s.PW;
        int64_t lo, up;
        valid_range(wbase, s.SW, s.W, s.WO, &lo, &up);
        for (int64_t ho = 0; ho < s.HO; ++ho) {
          const int64_t hi = ho * s.SH - s.PH + kh * s.DH;
          if (hi < 0 || hi >= s.H) continue;
          const T* src = cols + k * ld + ho * s.WO;
          T* dr = dxc + hi * s.W + wbase;
          if (s.SW == 1) {
            for (int64_t j = lo; j < up; ++j) dr[j] += src[j];
          } else {
            for (int64_t j = lo; j < up; ++j) dr[j * s.SW] += src[j];
          }
        }
      }
    }
  }
}

template <typename T>
at::Tensor forward_impl(const at::Tensor& input, const at::Tensor& weight,
                        const at::Tensor& bias, const Adder2dShape& s) {
  const auto& kern = cpu::kernels<T>();
  const int64_t MR = kern.fwd_mr, NR = kern.fwd_nr;
  const int64_t K = s.K, P = s.P, COG = s.COG;
  const int64_t MB = ceil_div(COG, MR), mpad = MB * MR;
  const int64_t npanel = ceil_div(P, NR);
  // KC: K-slice length; keeps the KC x NR panel slice (16 KiB) in L1.
  const int64_t KC = std::max<int64_t>(16, 16384 / (NR * sizeof(T)));

  at::Tensor out = at::empty({s.N, s.COUT, s.HO, s.WO}, input.options());
  if (out.numel() == 0) return out;
  const T* x = input.data_ptr<T>();
  const T* w = weight.data_ptr<T>();
  const T* b = bias.defined() ? bias.data_ptr<T>() : nullptr;
  T* y = out.data_ptr<T>();

  // The microkernel reads weight rows in place (row stride K). A ragged
  // last block of MR rows (COG % MR != 0) reads a zero-padded copy instead.
  const int64_t tail_rows = COG % MR;
  at::Tensor wtail;
  if (tail_rows) wtail = at::zeros({s.G, MR, K}, input.options());
  T* wt_tail = tail_rows ? wtail.data_ptr<T>() : nullptr;
  for (int64_t g = 0; g < s.G && tail_rows; ++g)
    std::memcpy(wt_tail + g * MR * K, w + (g * COG + COG - tail_rows) * K,
                tail_rows * K * sizeof(T));

  const int64_t items = s.N * s.G * npanel;
  at::parallel_for(0, items, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> panel(K * NR), cblock(mpad * NR);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t pn = item % npanel, ng = item / npanel;
      const int64_t g = ng % s.G, n = ng / s.G;
      const int64_t p0 = pn * NR, np = std::min(NR, P - p0);
      im2col_columns(x + (n * s.C + g * s.CPG) * s.H * s.W, s, p0, np, NR,
                     panel.data(), NR);
      const T* wg = w + g * COG * K;
      for (int64_t k0 = 0; k0 < K; k0 += KC) {
        const int64_t kc = std::min(KC, K - k0);
        for (int64_t mb = 0; mb < MB; ++mb) {
          const T* a = (tail_rows && mb == MB - 1) ? wt_tail + g * MR * K
                                                   : wg + mb * MR * K;
          kern.fwd(kc, a + k0, K, panel.data() + k0 * NR,
                   cblock.data() + mb * MR * NR, k0 > 0);
        }
      }
      T* yg = y + (n * s.COUT + g * COG) * P + p0;
      for (int64_t co = 0; co < COG; ++co) {
        const T bv = b ? b[g * COG + co] : T(0);
        const T* src = cblock.data() + co * NR;
        T* dst = yg + co * P;
        for (int64_t j = 0; j < np; ++j) dst[j] = bv - src[j];
      }
    }
  });
  return out;
}

template <typename T>
std::tuple<at::Tensor, at::Tensor> backward_impl(const at::Tensor& grad_out,
                                                 const at::Tensor& input,
                                                 const at::Tensor& weight,
                                                 const Adder2dShape& s,
                                                 bool need_x, bool need_w) {
  const auto& kern = cpu::kernels<T>();
  const int64_t MR = kern.dx_mr, NR = kern.dx_nr;
  const int64_t K = s.K, P = s.P, COG = s.COG, G = s.G;
  const int64_t kpad = round_up(K, MR);
  const int64_t npanel = ceil_div(P, NR);
  int64_t ld = npanel * NR;
  // avoid row strides that are multiples of 1 KiB (cache-set aliasing)
  if ((ld * static_cast<int64_t>(sizeof(T))) % 1024 == 0) ld += NR;

  at::Tensor grad_x, grad_w;
  if (need_x) grad_x = at::zeros_like(input);
  const T* gy = grad_out.data_ptr<T>();
  const T* x = input.data_ptr<T>();
  const T* w = weight.data_ptr<T>();
  T* gx = need_x ? grad_x.data_ptr<T>() : nullptr;

  // The dX microkernel reads MR weight columns in place (row stride K); a
  // ragged last column block (K % MR != 0) reads a zero-padded copy.
  const int64_t tail_cols = K % MR;
  at::Tensor wtail;
  T* wt_tail = nullptr;
  if (need_x && tail_cols) {
    wtail = at::zeros({G, COG, MR}, input.options());
    wt_tail = wtail.data_ptr<T>();
    for (int64_t g = 0; g < G; ++g)
      for (int64_t co = 0; co < COG; ++co)
        for (int64_t i = 0; i < tail_cols; ++i)
          wt_tail[(g * COG + co) * MR + i] =
              w[(g * COG + co) * K + (K - tail_cols) + i];
  }

  const int64_t tasks = s.N * G;
  const int nthreads = at::get_num_threads();
  // Images in parallel needs one dW accumulator per thread; do it when
  // there is enough work and the extra accumulators are small next to the
  // input, otherwise parallelise inside each image (BLAS threads for dW).
  const int64_t w_bytes = weight.numel() * static_cast<int64_t>(sizeof(T));
  const int64_t x_bytes = input.numel() * static_cast<int64_t>(sizeof(T));
  const bool outer_parallel =
      tasks >= nthreads &&
      (!need_w ||
       (nthreads - 1) * w_bytes <= std::max<int64_t>(x_bytes, 32LL << 20));
  // dW accumulators: thread 0 writes grad_w, threads 1.. a partial each.
  at::Tensor dw_extra;
  if (need_w) {
    grad_w = at::zeros({s.COUT, K}, input.options());
    if (outer_parallel && nthreads > 1)
      dw_extra = at::zeros({nthreads - 1, s.COUT, K}, input.options());
  }
  const auto opts = input.options();

  auto body = [&](int64_t begin, int64_t end) {
    at::Tensor xcol = at::empty({kpad, ld}, opts);
    at::Tensor dxcol, dypad;
    if (need_x) {
      dxcol = at::empty({kpad, ld}, opts);
      dypad = at::empty({COG, ld}, opts);
    }
    T* xc = xcol.data_ptr<T>();
    at::Tensor dw_part;
    if (need_w) {
      const int tid = outer_parallel ? at::get_thread_num() : 0;
      dw_part = tid == 0 ? grad_w : dw_extra[tid - 1];
    }
    // padded rows of X_col stay zero
    if (kpad > K) std::fill(xc + K * ld, xc + kpad * ld, T(0));
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n = t / G, g = t % G;
      const T* xg = x + (n * s.C + g * s.CPG) * s.H * s.W;
      // im2col, columns [0, ld) (zero beyond P), parallel over panels
      at::parallel_for(0, npanel, 1, [&](int64_t pb, int64_t pe) {
        const int64_t c0 = pb * NR;
        const int64_t c1 = (pe == npanel) ? ld : pe * NR;
        im2col_columns(xg, s, c0, std::max<int64_t>(0, std::min(P, c1) - c0),
                       c1 - c0, xc + c0, ld);
      });
      const T* gyg = gy + (n * s.COUT + g * COG) * P;
      if (need_w) {
        at::Tensor dy_mat =
            grad_out.view({s.N, s.COUT, P}).select(0, n).narrow(0, g * COG,
                                                               COG);
        at::Tensor x_mat = xcol.narrow(0, 0, K).narrow(1, 0, P);
        dw_part.narrow(0, g * COG, COG).addmm_(dy_mat, x_mat.t());
      }
      if (need_x) {
        T* dyp = dypad.data_ptr<T>();
        T* dxc = dxcol.data_ptr<T>();
        for (int64_t co = 0; co < COG; ++co) {
          std::memcpy(dyp + co * ld, gyg + co * P, P * sizeof(T));
          std::fill(dyp + co * ld + P, dyp + (co + 1) * ld, T(0));
        }
        const T* wg = w + g * COG * K;
        const int64_t k_full = K - tail_cols;
        at::parallel_for(0, npanel, 1, [&](int64_t pb, int64_t pe) {
          for (int64_t pn = pb; pn < pe; ++pn)
            for (int64_t k0 = 0; k0 < K; k0 += MR) {
              const bool tail = k0 >= k_full;
              kern.dx(COG, tail ? wt_tail + g * COG * MR : wg + k0,
                      tail ? MR : K, dyp + pn * NR, xc + k0 * ld + pn * NR,
                      dxc + k0 * ld + pn * NR, ld, false);
            }
        });
        T* gxg = gx + (n * s.C + g * s.CPG) * s.H * s.W;
        at::parallel_for(0, s.CPG, 1, [&](int64_t cb, int64_t ce) {
          col2im_channels(dxc, ld, s, cb, ce, gxg);
        });
      }
    }
  };
  if (outer_parallel)
    at::parallel_for(0, tasks, 1, body);
  else
    body(0, tasks);

  if (need_w) {
    // dW = sum_n dY X_col^T - W * rowsum(dY), without W-sized temporaries
    for (int64_t t = 0; dw_extra.defined() && t < dw_extra.size(0); ++t)
      grad_w.add_(dw_extra[t]);
    at::Tensor rowsum = grad_out.sum({0, 2, 3});
    grad_w.addcmul_(weight.view({s.COUT, K}), rowsum.view({-1, 1}), -1);
    grad_w = grad_w.view_as(weight);
  }
  return std::make_tuple(grad_x, grad_w);
}

}  // namespace

at::Tensor adder2d_forward_cpu(const at::Tensor& input,
                               const at::Tensor& weight,
                               const at::Tensor& bias,
                               const Adder2dShape& s) {
  return AT_DISPATCH_FLOATING_TYPES(
      input.scalar_type(), "adder2d_forward_cpu",
      [&] { return forward_impl<scalar_t>(input, weight, bias, s); });
}

std::tuple<at::Tensor, at::Tensor> adder2d_backward_cpu(
    const at::Tensor& grad_out, const at::Tensor& input,
    const at::Tensor& weight, const Adder2dShape& s, bool need_input,
    bool need_weight) {
  return AT_DISPATCH_FLOATING_TYPES(
      input.scalar_type(), "adder2d_backward_cpu", [&] {
        return backward_impl<scalar_t>(grad_out, input, weight, s,
                                       need_input, need_weight);
      });
}

}  // namespace mmpkkd
