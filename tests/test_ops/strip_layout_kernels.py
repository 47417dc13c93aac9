"""A negative example for the static check (test_triton_sass.py).

The forward kernel of adder2d as it was before the register-blocked rewrite
(mmpkkd/ops/triton_kernels.py at commit d1f682e): a 2-D accumulator that
Triton lays out as one strip of outputs per thread, with every operand
loaded from global memory in the loop. mmpkkd.ops.sass_check must reject
it: it compiles to about 5.4-6.0 SASS instructions per MAC on sm_90 with
global loads in the hot loop.
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
