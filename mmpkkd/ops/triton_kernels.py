"""Triton kernels of adder2d: forward, input gradient, weight gradient.

The same math as the CPU and CUDA C++ kernels (see
:func:`mmpkkd.ops.adder2d`), over implicit im2col (no unfolded copy of the
input is ever made) and with the input's own strides, so NCHW, channels-last
or any strided view is read in place. Every kernel accumulates in float32
for float32 tensors (float64 for float64) and uses no tensor-core math:
the weight gradient's ``tl.dot`` asks for IEEE float32 precision, never TF32.

* :func:`adder2d_fwd_kernel` -- ``Y[n, g*COG+co, ho, wo] = bias - sum_{ci,
  kh, kw} |X_pad[n, g*CPG+ci, ho*SH-PH+kh*DH, wo*SW-PW+kw*DW] - W[...]|``.
  A program computes a (BLOCK_CO output channels) x (BLOCK_P output
  positions over the whole batch) tile; the reduction walks the kernel taps
  (their bounds checks computed once per tap) and, inside, the input
  channels.
* :func:`adder2d_grad_input_kernel` -- ``dX[n, ci, hi, wi] = sum_{co, kh,
  kw} HardTanh(W[co, ci, kh, kw] - X[n, ci, hi, wi]) * dY[n, co, ho, wo]``
  over the taps whose output position ``(ho, wo)`` exists. A gather (no
  col2im, no atomics): a program owns a (BLOCK_CI) x (BLOCK_P input pixels)
  tile of dX and keeps those inputs in registers.
* :func:`adder2d_grad_weight_kernel` -- ``dW[co, ci, kh, kw] = sum_{n, ho,
  wo} (X_pad[...] - W[co, ci, kh, kw]) * dY[n, co, ho, wo]`` (AdderNet's
  full-precision gradient), computed as ``dY X_col^T - W * sum(dY)`` per
  chunk of the reduction. A program owns one tap, a (BLOCK_CO) x (BLOCK_CI)
  tile and one chunk of the (n, ho, wo) reduction; the chunks' partial sums
  are added afterwards in a fixed order (deterministic, no atomics).

The weight is passed transposed so that the vectors a program loads are
contiguous: ``wt_fwd[g, kh, kw, ci, co]`` for the forward and
``wt_bwd[g, kh, kw, co, ci]`` for the input gradient.

Integer arguments are not specialised (``do_not_specialize``), so one
compiled kernel serves every layer shape; the launchers autotune the tile
sizes per coarse shape key (``KEY_*``: sizes rounded up to a power of two).
Under ``TRITON_INTERPRET=1`` the kernels run on CPU tensors with Triton's
interpreter, which is how they are tested on machines without a GPU.
"""
import triton
import triton.language as tl

_SIZES = ('N', 'C', 'H', 'W', 'COUT', 'HO', 'WO', 'CPG', 'COG', 'KH', 'KW',
          'SH', 'SW', 'PH', 'PW', 'DH', 'DW')


@triton.jit(do_not_specialize=_SIZES + (
    'sxn', 'sxc', 'sxh', 'sxw', 'KEY_CO', 'KEY_CI', 'KEY_P'))
def adder2d_fwd_kernel(x_ptr, wt_ptr, b_ptr, y_ptr, N, C, H, W, COUT, HO,
                       WO, CPG, COG, KH, KW, SH, SW, PH, PW, DH, DW, sxn,
                       sxc, sxh, sxw, KEY_CO, KEY_CI, KEY_P,
                       HAS_BIAS: tl.constexpr, IS_FP64: tl.constexpr,
                       BLOCK_CO: tl.constexpr, BLOCK_P: tl.constexpr,
                       UNROLL: tl.constexpr):
    pid_p = tl.program_id(0)
    pid_co = tl.program_id(1)
    g = tl.program_id(2)
    P = HO * WO
    offs_p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    offs_co = pid_co * BLOCK_CO + tl.arange(0, BLOCK_CO)
    p_ok = offs_p < N * P
    co_ok = offs_co < COG
    img = (offs_p // P).to(tl.int64)
    pos = offs_p % P
    h0 = (pos // WO) * SH - PH
    w0 = (pos % WO) * SW - PW
    x_img = x_ptr + img * sxn + (g * CPG).to(tl.int64) * sxc
    wt_g = wt_ptr + g.to(tl.int64) * (KH * KW * CPG * COG) + offs_co
    acc = tl.zeros((BLOCK_CO, BLOCK_P),
                   dtype=tl.float64 if IS_FP64 else tl.float32)
    for kh in range(0, KH):
        hi = h0 + kh * DH
        h_ok = p_ok & (hi >= 0) & (hi < H)
        for kw in range(0, KW):
            wi = w0 + kw * DW
            ok = h_ok & (wi >= 0) & (wi < W)
            x_tap = x_img + hi * sxh + wi * sxw
            w_tap = wt_g + (kh * KW + kw) * CPG * COG
            # UNROLL channels per trip: their loads are independent, so
            # they are in flight together (the loop is latency-bound
            # otherwise); a channel past CPG reads 0 - 0 and adds nothing
            for ci0 in range(0, CPG, UNROLL):
                for u in tl.static_range(UNROLL):
                    ci = ci0 + u
                    xv = tl.load(x_tap + ci * sxc, mask=ok & (ci < CPG),
                                 other=0.0)
                    wv = tl.load(w_tap + ci * COG, mask=co_ok & (ci < CPG),
                                 other=0.0)
                    acc += tl.abs(wv[:, None] - xv[None, :])
    out = -acc
    if HAS_BIAS:
        bv = tl.load(b_ptr + g * COG + offs_co, mask=co_ok, other=0.0)
        out = bv[:, None] + out
    y_offs = (img * COUT * P + pos)[None, :] + (
        (g * COG + offs_co).to(tl.int64) * P)[:, None]
    tl.store(y_ptr + y_offs, out, mask=co_ok[:, None] & p_ok[None, :])


@triton.jit(do_not_specialize=_SIZES + (
    'sgn', 'sgc', 'sgh', 'sgw', 'sxn', 'sxc', 'sxh', 'sxw', 'KEY_CO',
    'KEY_CI', 'KEY_P'))
def adder2d_grad_input_kernel(gy_ptr, x_ptr, wt_ptr, gx_ptr, N, C, H, W,
                              COUT, HO, WO, CPG, COG, KH, KW, SH, SW, PH, PW,
                              DH, DW, sgn, sgc, sgh, sgw, sxn, sxc, sxh, sxw,
                              KEY_CO, KEY_CI, KEY_P, BLOCK_CI: tl.constexpr,
                              BLOCK_P: tl.constexpr, UNROLL: tl.constexpr):
    pid_p = tl.program_id(0)
    pid_ci = tl.program_id(1)
    g = tl.program_id(2)
    HW = H * W
    offs_p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    offs_ci = pid_ci * BLOCK_CI + tl.arange(0, BLOCK_CI)
    p_ok = offs_p < N * HW
    ci_ok = offs_ci < CPG
    img = (offs_p // HW).to(tl.int64)
    pix = offs_p % HW
    hi = pix // W
    wi = pix % W
    # the inputs of this tile, kept for the whole reduction
    x_offs = (img * sxn + hi * sxh + wi * sxw)[None, :] + (
        (g * CPG + offs_ci).to(tl.int64) * sxc)[:, None]
    tile_ok = ci_ok[:, None] & p_ok[None, :]
    xt = tl.load(x_ptr + x_offs, mask=tile_ok, other=0.0)
    gy_img = gy_ptr + img * sgn + (g * COG).to(tl.int64) * sgc
    wt_g = wt_ptr + g.to(tl.int64) * (KH * KW * COG * CPG) + offs_ci
    acc = tl.zeros((BLOCK_CI, BLOCK_P), dtype=xt.dtype)
    for kh in range(0, KH):
        hnum = hi + PH - kh * DH
        ho = hnum // SH
        h_ok = p_ok & (hnum >= 0) & (hnum % SH == 0) & (ho < HO)
        for kw in range(0, KW):
            wnum = wi + PW - kw * DW
            wo = wnum // SW
            ok = h_ok & (wnum >= 0) & (wnum % SW == 0) & (wo < WO)
            gy_tap = gy_img + ho * sgh + wo * sgw
            w_tap = wt_g + (kh * KW + kw) * COG * CPG
            for co0 in range(0, COG, UNROLL):  # (as in the forward)
                for u in tl.static_range(UNROLL):
                    co = co0 + u
                    dy = tl.load(gy_tap + co * sgc, mask=ok & (co < COG),
                                 other=0.0)
                    wv = tl.load(w_tap + co * CPG, mask=ci_ok & (co < COG),
                                 other=0.0)
                    d = wv[:, None] - xt
                    d = tl.minimum(tl.maximum(d, -1.0), 1.0)
                    acc += d * dy[None, :]
    gx_offs = (img * C * HW + pix)[None, :] + (
        (g * CPG + offs_ci).to(tl.int64) * HW)[:, None]
    tl.store(gx_ptr + gx_offs, acc, mask=tile_ok)


@triton.jit(do_not_specialize=_SIZES + (
    'sgn', 'sgc', 'sgh', 'sgw', 'sxn', 'sxc', 'sxh', 'sxw', 'CHUNK',
    'KEY_CO', 'KEY_CI', 'KEY_P'))
def adder2d_grad_weight_kernel(gy_ptr, x_ptr, w_ptr, part_ptr, N, C, H, W,
                               COUT, HO, WO, CPG, COG, KH, KW, SH, SW, PH, PW,
                               DH, DW, sgn, sgc, sgh, sgw, sxn, sxc, sxh, sxw,
                               CHUNK, KEY_CO, KEY_CI, KEY_P,
                               IS_FP64: tl.constexpr, BLOCK_CO: tl.constexpr,
                               BLOCK_CI: tl.constexpr, BLOCK_R: tl.constexpr):
    pid_t = tl.program_id(0)  # (tap, ci tile, co tile)
    chunk = tl.program_id(1)
    g = tl.program_id(2)
    n_co = tl.cdiv(COG, BLOCK_CO)
    n_ci = tl.cdiv(CPG, BLOCK_CI)
    co_t = pid_t % n_co
    ci_t = (pid_t // n_co) % n_ci
    tap = pid_t // (n_co * n_ci)
    kh = tap // KW
    kw = tap % KW
    offs_co = co_t * BLOCK_CO + tl.arange(0, BLOCK_CO)
    offs_ci = ci_t * BLOCK_CI + tl.arange(0, BLOCK_CI)
    co_ok = offs_co < COG
    ci_ok = offs_ci < CPG
    P = HO * WO
    total = N * P
    r_begin = chunk * CHUNK
    r_end = tl.minimum(r_begin + CHUNK, total)
    gy_ch = gy_ptr + ((g * COG + offs_co).to(tl.int64) * sgc)[:, None]
    x_ch = x_ptr + ((g * CPG + offs_ci).to(tl.int64) * sxc)[None, :]
    dtype = tl.float64 if IS_FP64 else tl.float32
    acc = tl.zeros((BLOCK_CO, BLOCK_CI), dtype=dtype)
    rowsum = tl.zeros((BLOCK_CO, ), dtype=dtype)
    for r0 in range(r_begin, r_end, BLOCK_R):
        offs_r = r0 + tl.arange(0, BLOCK_R)
        r_ok = offs_r < r_end
        img = (offs_r // P).to(tl.int64)
        pos = offs_r % P
        ho = pos // WO
        wo = pos % WO
        hi = ho * SH - PH + kh * DH
        wi = wo * SW - PW + kw * DW
        x_ok = r_ok & (hi >= 0) & (hi < H) & (wi >= 0) & (wi < W)
        dy = tl.load(
            gy_ch + (img * sgn + ho * sgh + wo * sgw)[None, :],
            mask=co_ok[:, None] & r_ok[None, :],
            other=0.0)  # (BLOCK_CO, BLOCK_R)
        xv = tl.load(
            x_ch + (img * sxn + hi * sxh + wi * sxw)[:, None],
            mask=x_ok[:, None] & ci_ok[None, :],
            other=0.0)  # (BLOCK_R, BLOCK_CI)
        if IS_FP64:
            acc += tl.sum(dy[:, :, None] * xv[None, :, :], axis=1)
        else:
            acc += tl.dot(dy, xv, input_precision='ieee')
        rowsum += tl.sum(dy, axis=1)
    # W[g*COG+co, ci, kh, kw] of this tile (the weight is contiguous)
    w_offs = ((g * COG + offs_co).to(tl.int64) * (CPG * KH * KW))[:, None] + (
        offs_ci * (KH * KW) + kh * KW + kw)[None, :]
    tile_ok = co_ok[:, None] & ci_ok[None, :]
    wv = tl.load(w_ptr + w_offs, mask=tile_ok, other=0.0)
    part = acc - wv * rowsum[:, None]
    p_offs = chunk.to(tl.int64) * (COUT * CPG * KH * KW) + w_offs
    tl.store(part_ptr + p_offs, part, mask=tile_ok)
