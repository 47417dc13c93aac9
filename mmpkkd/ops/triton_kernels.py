"""Triton kernels of adder2d: forward, input gradient, weight gradient.

The same math as the CPU and CUDA C++ kernels (see
:func:`mmpkkd.ops.adder2d`), over implicit im2col (no unfolded copy of the
input is ever made) and with the input's own strides, so NCHW, channels-last
or any strided view is read in place; the weight is read in place too (no
permuted copy per call). Every kernel accumulates in float32 for float32
tensors (float64 for float64) and uses no tensor-core math.

All three are register-blocked like an SGEMM: the accumulator has the 4-D
shape ``(TM, TN, GM, GN)``. Triton spreads the last two dimensions over the
threads and keeps the first two in each thread, so a thread owns a TM x TN
block of outputs (rows ``tm * GM + gm``, columns ``tn * GN + gn``) and reuses
every operand it reads TM or TN times from registers. The reduction runs in
one flat ``tl.range(..., num_stages=STAGES)`` loop whose trips each cover
``KC * SPLIT`` reduction elements: Triton stages the operands of the coming
trips through shared memory with asynchronous copies (masked loads become
zero-filling copies) and reads them back with wide shared loads. Loop
counters (kernel tap, channel chunk, output row) advance incrementally: no
integer division runs inside a loop.

* :func:`adder2d_fwd_kernel` -- ``Y[n, g*COG+co, ho, wo] = bias - sum_{ci,
  kh, kw} |X_pad[n, g*CPG+ci, ho*SH-PH+kh*DH, wo*SW-PW+kw*DW] - W[...]|``.
  M = output channels, N = output positions over the whole batch, reduction
  over (channel chunk, kh, kw).
* :func:`adder2d_grad_input_kernel` -- ``dX[n, ci, hi, wi] = sum_{co, kh,
  kw} HardTanh(W[co, ci, kh, kw] - X[n, ci, hi, wi]) * dY[n, co, ho, wo]``
  over the taps whose output position exists. The input pixels are split
  by stride phase ``(hi mod SH, wi mod SW)``: within a phase the taps that
  reach an output form a fixed arithmetic progression and ``ho`` is the
  pixel's row in the phase minus a per-tap constant, so a program visits
  only taps that exist (at stride 2, a quarter of the 3x3 taps on average,
  instead of all of them masked). In float32 the clamp is computed as
  ``2 * sat(W / 2 + (1/2 - X / 2)) - 1`` (``sat`` = clamp to [0, 1], one
  saturating FMA on NVIDIA GPUs; ``1/2 - X/2`` once per output), which
  differs from ``clamp(W - X, -1, 1)`` by float32 rounding only (tested);
  float64 uses the exact form.
* :func:`adder2d_grad_weight_kernel` -- ``dW[co, ci, kh, kw] = sum_{n, ho,
  wo} (X_pad[...] - W[co, ci, kh, kw]) * dY[n, co, ho, wo]`` (AdderNet's
  full-precision gradient), computed as ``dY X_col^T - W * sum(dY)``. A
  program owns one tap and a (co, ci) tile; a trip covers ``KC * SPLIT``
  output columns of one output row, so the input row and its bounds check
  are one scalar per trip. The reduction over rows is split into chunks
  whose partial sums are added afterwards in a fixed order (deterministic,
  no atomics).

The forward and the input gradient also split their reduction (``KSPLIT``
programs per output tile, each writing a partial result) when a layer has
too few output tiles to fill the GPU; the launcher adds the partial results.

Integer arguments are not specialised (``do_not_specialize``), so one
compiled kernel serves every layer shape. Under ``TRITON_INTERPRET=1`` the
kernels run on CPU tensors with Triton's interpreter, which is how they are
tested on machines without a GPU; :mod:`mmpkkd.ops.sass_check` compiles them
for sm_90 and checks their machine code, also without a GPU.
"""
import triton
import triton.language as tl

_SIZES = ('N', 'C', 'H', 'W', 'COUT', 'HO', 'WO', 'CPG', 'COG', 'KH', 'KW',
          'SH', 'SW', 'PH', 'PW', 'DH', 'DW')


@triton.jit
def _index2(base, A: tl.constexpr, B: tl.constexpr):
    """(A, B) indices ``base + a * B + b``: row a of a thread's block,
    thread b."""
    return base + tl.arange(0, A)[:, None] * B + tl.arange(0, B)[None, :]


@triton.jit(do_not_specialize=_SIZES + ('sxn', 'sxc', 'sxh', 'sxw', 'KSPLIT'))
def adder2d_fwd_kernel(x_ptr, w_ptr, b_ptr, y_ptr, N, C, H, W, COUT, HO, WO,
                       CPG, COG, KH, KW, SH, SW, PH, PW, DH, DW, sxn, sxc,
                       sxh, sxw, KSPLIT, HAS_BIAS: tl.constexpr,
                       IS_FP64: tl.constexpr, EVEN_C: tl.constexpr,
                       TM: tl.constexpr,
                       TN: tl.constexpr, GM: tl.constexpr, GN: tl.constexpr,
                       KC: tl.constexpr, SPLIT: tl.constexpr,
                       STAGES: tl.constexpr):
    """Forward. Grid: (position tiles, channel tiles, groups * KSPLIT).

    ``w_ptr``: the weight, contiguous (COUT, CPG, KH, KW). ``y_ptr``: the
    output, contiguous NCHW, or (KSPLIT, N, COUT, HO, WO) partial outputs
    when KSPLIT > 1 (the bias is in part 0). EVEN_C: CPG is a multiple of
    KC * SPLIT (no channel mask).
    """
    pid_p = tl.program_id(0)
    pid_co = tl.program_id(1)
    g = tl.program_id(2) // KSPLIT
    ks = tl.program_id(2) % KSPLIT
    BP: tl.constexpr = TN * GN
    BCO: tl.constexpr = TM * GM
    CK: tl.constexpr = KC * SPLIT
    P = HO * WO
    # output positions of this tile (TN, GN), once per program
    p = _index2(pid_p * BP, TN, GN)
    p_ok = p < N * P
    img = p // P
    pos = p - img * P
    ho = pos // WO
    h0 = ho * SH - PH
    w0 = (pos - ho * WO) * SW - PW
    x_p = (img.to(tl.int64) * sxn + (g * CPG).to(tl.int64) * sxc +
           h0 * sxh + w0 * sxw)
    co = _index2(pid_co * BCO, TM, GM)
    co_ok = co < COG
    KHW = KH * KW
    w_co = (g * COG + co).to(tl.int64) * (CPG * KHW)
    kk = tl.arange(0, KC)
    acc = tl.zeros((TM, TN, GM, GN),
                   dtype=tl.float64 if IS_FP64 else tl.float32)
    # trips: (channel chunk, kh, kw), kw fastest; this split's share
    trips = tl.cdiv(CPG, CK) * KHW
    per = tl.cdiv(trips, KSPLIT)
    t0 = ks * per
    t1 = tl.minimum(t0 + per, trips)
    kw = t0 % KW
    kh = (t0 // KW) % KH
    ci0 = (t0 // KHW) * CK
    for _ in tl.range(t0, t1, num_stages=STAGES):
        hi = h0 + kh * DH
        wi = w0 + kw * DW
        ok = p_ok & (hi.to(tl.uint32) < H) & (wi.to(tl.uint32) < W)
        tap_x = kh * DH * sxh + kw * DW * sxw
        tap_w = kh * KW + kw
        for half in tl.static_range(SPLIT):
            ci = ci0 + half * KC + kk
            ci_ok = (ci < CPG) | EVEN_C
            xv = tl.load(x_ptr + (x_p[None, :, :] + tap_x +
                                  (ci * sxc)[:, None, None]),
                         mask=ok[None, :, :] & ci_ok[:, None, None],
                         other=0.0)  # (KC, TN, GN)
            wv = tl.load(w_ptr + (w_co[None, :, :] +
                                  (ci * KHW + tap_w)[:, None, None]),
                         mask=co_ok[None, :, :] & ci_ok[:, None, None],
                         other=0.0)  # (KC, TM, GM)
            d = wv[:, :, None, :, None] - xv[:, None, :, None, :]
            acc += tl.sum(tl.abs(d), axis=0)
        kw += 1
        wrap = kw == KW
        kw = tl.where(wrap, 0, kw)
        kh = tl.where(wrap, kh + 1, kh)
        wrap = kh == KH
        kh = tl.where(wrap, 0, kh)
        ci0 = tl.where(wrap, ci0 + CK, ci0)
    out = -acc
    if HAS_BIAS:
        bv = tl.load(b_ptr + g * COG + co, mask=co_ok & (ks == 0), other=0.0)
        out = out + bv[:, None, :, None]
    y_off = ((img.to(tl.int64) * COUT * P + pos)[None, :, None, :] +
             ((g * COG + co).to(tl.int64) * P)[:, None, :, None])
    y_part = y_ptr + ks.to(tl.int64) * N * COUT * P
    tl.store(y_part + y_off, out,
             mask=co_ok[:, None, :, None] & p_ok[None, :, None, :])


@triton.jit
def _first_tap(K, S, P, D, r):
    """First tap k of the phase r (k*D = r+P mod S), the tap count and the
    tap step of one spatial axis."""
    k0 = K
    nk = 0
    for i in range(0, K):
        k = K - 1 - i
        hit = (r + P - k * D) % S == 0
        k0 = tl.where(hit, k, k0)
        nk += hit.to(tl.int32)
    step = S
    for i in range(0, S):
        s = S - i
        step = tl.where((s * D) % S == 0, s, step)
    return k0, nk, step


@triton.jit(do_not_specialize=_SIZES + (
    'sgn', 'sgc', 'sgh', 'sgw', 'sxn', 'sxc', 'sxh', 'sxw', 'KSPLIT'))
def adder2d_grad_input_kernel(gy_ptr, x_ptr, w_ptr, gx_ptr, N, C, H, W,
                              COUT, HO, WO, CPG, COG, KH, KW, SH, SW, PH, PW,
                              DH, DW, sgn, sgc, sgh, sgw, sxn, sxc, sxh, sxw,
                              KSPLIT, IS_FP64: tl.constexpr,
                              EVEN_K: tl.constexpr, TM: tl.constexpr,
                              TN: tl.constexpr, GM: tl.constexpr,
                              GN: tl.constexpr, KC: tl.constexpr,
                              SPLIT: tl.constexpr, STAGES: tl.constexpr):
    """Input gradient. Grid: (pixel tiles of the largest phase, channel
    tiles, groups * SH * SW phases * KSPLIT).

    ``gx_ptr``: contiguous NCHW, or (KSPLIT, N, C, H, W) partials. EVEN_K:
    COG is a multiple of KC * SPLIT. KC must be 4.
    """
    pid_p = tl.program_id(0)
    pid_ci = tl.program_id(1)
    ks = tl.program_id(2) % KSPLIT
    pid_z = tl.program_id(2) // KSPLIT
    g = pid_z // (SH * SW)
    phase = pid_z % (SH * SW)
    rh = phase // SW
    rw = phase % SW
    BP: tl.constexpr = TN * GN
    BCI: tl.constexpr = TM * GM
    CK: tl.constexpr = KC * SPLIT
    # the phase's pixels hi = rh + SH * jh, wi = rw + SW * jw
    JH = tl.maximum(H - rh + SH - 1, 0) // SH
    JW = tl.maximum(W - rw + SW - 1, 0) // SW
    JHW = tl.maximum(JH * JW, 1)
    q = _index2(pid_p * BP, TN, GN)
    q_ok = q < N * JH * JW
    img = q // JHW
    jh = (q - img * JHW) // tl.maximum(JW, 1)
    jw = q - img * JHW - jh * JW
    hi = rh + SH * jh
    wi = rw + SW * jw
    ci = _index2(pid_ci * BCI, TM, GM)
    ci_ok = ci < CPG
    x_off = ((img.to(tl.int64) * sxn + hi * sxh + wi * sxw)[None, :, None, :] +
             ((g * CPG + ci).to(tl.int64) * sxc)[:, None, :, None])
    x_ok = ci_ok[:, None, :, None] & q_ok[None, :, None, :]
    xt = tl.load(x_ptr + x_off, mask=x_ok, other=0.0)
    if IS_FP64:
        xc = xt
    else:
        xc = 0.5 - 0.5 * xt
    # the taps of this phase: kh = kh0 + i * skh (i < nkh); their output
    # row is jh + oh with oh = oh0 - i * doh (likewise for w)
    kh0, nkh, skh = _first_tap(KH, SH, PH, DH, rh)
    kw0, nkw, skw = _first_tap(KW, SW, PW, DW, rw)
    oh0 = (rh + PH - kh0 * DH) // SH
    ow0 = (rw + PW - kw0 * DW) // SW
    doh = skh * DH // SH
    dow = skw * DW // SW
    KHW = KH * KW
    gy_q = (img.to(tl.int64) * sgn + (g * COG).to(tl.int64) * sgc +
            jh * sgh + jw * sgw)
    w_ci = (g * COG).to(tl.int64) * (CPG * KHW) + ci * KHW
    kk = tl.arange(0, KC)
    acc = tl.zeros((TM, TN, GM, GN),
                   dtype=tl.float64 if IS_FP64 else tl.float32)
    # trips: (channel chunk, tap row, tap column); this split's share
    taps = nkh * nkw
    trips = tl.cdiv(COG, CK) * taps
    per = tl.cdiv(trips, KSPLIT)
    t0 = ks * per
    t1 = tl.minimum(t0 + per, trips)
    tap_s = tl.maximum(taps, 1)
    ikw = t0 % tl.maximum(nkw, 1)
    ikh = (t0 % tap_s) // tl.maximum(nkw, 1)
    co0 = (t0 // tap_s) * CK
    oh = oh0 - ikh * doh
    ow = ow0 - ikw * dow
    tap = (kh0 + ikh * skh) * KW + kw0 + ikw * skw
    for _ in tl.range(t0, t1, num_stages=STAGES):
        ok = (q_ok & ((jh + oh).to(tl.uint32) < HO) &
              ((jw + ow).to(tl.uint32) < WO))
        tap_g = oh * sgh + ow * sgw
        for half in tl.static_range(SPLIT):
            co = co0 + half * KC + kk
            co_ok = (co < COG) | EVEN_K
            dy = tl.load(gy_ptr + (gy_q[:, :, None] + tap_g +
                                   (co * sgc)[None, None, :]),
                         mask=ok[:, :, None] & co_ok[None, None, :],
                         other=0.0)  # (TN, GN, KC)
            wv = tl.load(w_ptr + (w_ci[:, :, None] +
                                  (co * (CPG * KHW) + tap)[None, None, :]),
                         mask=ci_ok[:, :, None] & co_ok[None, None, :],
                         other=0.0)  # (TM, GM, KC)
            # (written out, not through helper calls: the interpreter
            # pays for every call)
            wa, wb = tl.split(tl.reshape(wv, (TM, GM, 2, 2)))
            da, db = tl.split(tl.reshape(dy, (TN, GN, 2, 2)))
            w0, w1 = tl.split(wa)
            w2, w3 = tl.split(wb)
            d0, d1 = tl.split(da)
            d2, d3 = tl.split(db)
            w0 = w0[:, None, :, None]
            w1 = w1[:, None, :, None]
            w2 = w2[:, None, :, None]
            w3 = w3[:, None, :, None]
            if IS_FP64:  # HardTanh(w - x), xc = x
                h0 = tl.minimum(tl.maximum(w0 - xc, -1.0), 1.0)
                h1 = tl.minimum(tl.maximum(w1 - xc, -1.0), 1.0)
                h2 = tl.minimum(tl.maximum(w2 - xc, -1.0), 1.0)
                h3 = tl.minimum(tl.maximum(w3 - xc, -1.0), 1.0)
            else:  # 2 sat(w/2 + xc) - 1, xc = 1/2 - x/2
                h0 = tl.minimum(tl.maximum(w0 * 0.5 + xc, 0.0), 1.0)
                h1 = tl.minimum(tl.maximum(w1 * 0.5 + xc, 0.0), 1.0)
                h2 = tl.minimum(tl.maximum(w2 * 0.5 + xc, 0.0), 1.0)
                h3 = tl.minimum(tl.maximum(w3 * 0.5 + xc, 0.0), 1.0)
                h0 = h0 * 2.0 - 1.0
                h1 = h1 * 2.0 - 1.0
                h2 = h2 * 2.0 - 1.0
                h3 = h3 * 2.0 - 1.0
            acc += h0 * d0[None, :, None, :]
            acc += h1 * d1[None, :, None, :]
            acc += h2 * d2[None, :, None, :]
            acc += h3 * d3[None, :, None, :]
        ikw += 1
        ow -= dow
        tap += skw
        wrap = ikw == nkw
        ikw = tl.where(wrap, 0, ikw)
        ow = tl.where(wrap, ow0, ow)
        tap = tl.where(wrap, tap - nkw * skw + skh * KW, tap)
        ikh = tl.where(wrap, ikh + 1, ikh)
        oh = tl.where(wrap, oh - doh, oh)
        wrap = ikh == nkh
        ikh = tl.where(wrap, 0, ikh)
        oh = tl.where(wrap, oh0, oh)
        tap = tl.where(wrap, kh0 * KW + kw0, tap)
        co0 = tl.where(wrap, co0 + CK, co0)
    gx_off = ((img.to(tl.int64) * C * H * W + hi * W + wi)[None, :, None, :] +
              ((g * CPG + ci).to(tl.int64) * H * W)[:, None, :, None])
    gx_part = gx_ptr + ks.to(tl.int64) * N * C * H * W
    tl.store(gx_part + gx_off, acc, mask=x_ok)


@triton.jit(do_not_specialize=_SIZES + (
    'sgn', 'sgc', 'sgh', 'sgw', 'sxn', 'sxc', 'sxh', 'sxw', 'ROWS'))
def adder2d_grad_weight_kernel(gy_ptr, x_ptr, w_ptr, part_ptr, N, C, H, W,
                               COUT, HO, WO, CPG, COG, KH, KW, SH, SW, PH, PW,
                               DH, DW, sgn, sgc, sgh, sgw, sxn, sxc, sxh, sxw,
                               ROWS, IS_FP64: tl.constexpr,
                               TM: tl.constexpr, TN: tl.constexpr,
                               GM: tl.constexpr, GN: tl.constexpr,
                               KC: tl.constexpr, SPLIT: tl.constexpr,
                               STAGES: tl.constexpr):
    """Weight gradient. Grid: (taps * ci tiles * co tiles, row chunks,
    groups).

    ``w_ptr``: the weight, contiguous. ``part_ptr``: (chunks, COUT, CPG, KH,
    KW); chunk c sums output rows (n, ho) ``[c * ROWS, (c + 1) * ROWS)``.
    KC must be 4.
    """
    pid_t = tl.program_id(0)
    chunk = tl.program_id(1)
    g = tl.program_id(2)
    BCO: tl.constexpr = TM * GM
    BCI: tl.constexpr = TN * GN
    CK: tl.constexpr = KC * SPLIT
    n_co = tl.cdiv(COG, BCO)
    n_ci = tl.cdiv(CPG, BCI)
    co_t = pid_t % n_co
    ci_t = (pid_t // n_co) % n_ci
    tap = pid_t // (n_co * n_ci)
    kh = tap // KW
    kw = tap % KW
    co = _index2(co_t * BCO, TM, GM)
    ci = _index2(ci_t * BCI, TN, GN)
    co_ok = co < COG
    ci_ok = ci < CPG
    gy_c = ((g * COG + co).to(tl.int64) * sgc)[:, :, None]
    x_c = ((g * CPG + ci).to(tl.int64) * sxc)[:, :, None]
    dtype = tl.float64 if IS_FP64 else tl.float32
    acc = tl.zeros((TM, TN, GM, GN), dtype=dtype)
    rowsum = tl.zeros((TM, GM), dtype=dtype)
    # trips: (output row (n, ho), column chunk), column chunk fastest
    r0 = chunk * ROWS
    r1 = tl.minimum(r0 + ROWS, N * HO)
    trips = tl.maximum(r1 - r0, 0) * tl.cdiv(WO, CK)
    n = r0 // HO
    ho = r0 - n * HO
    wo0 = 0
    kk = tl.arange(0, KC)
    w_shift = kw * DW - PW
    h_shift = kh * DH - PH
    for _ in tl.range(0, trips, num_stages=STAGES):
        hi = ho * SH + h_shift
        row_ok = (hi >= 0) & (hi < H)
        gy_row = n.to(tl.int64) * sgn + ho * sgh
        x_row = n.to(tl.int64) * sxn + hi * sxh
        for half in tl.static_range(SPLIT):
            wo = wo0 + half * KC + kk
            wo_ok = wo < WO
            wi = wo * SW + w_shift
            wi_ok = wo_ok & (wi.to(tl.uint32) < W) & row_ok
            dy = tl.load(gy_ptr + gy_c + gy_row + (wo * sgw)[None, None, :],
                         mask=co_ok[:, :, None] & wo_ok[None, None, :],
                         other=0.0)  # (TM, GM, KC)
            xv = tl.load(x_ptr + x_c + x_row + (wi * sxw)[None, None, :],
                         mask=ci_ok[:, :, None] & wi_ok[None, None, :],
                         other=0.0)  # (TN, GN, KC)
            # (written out, not through helper calls: the interpreter
            # pays for every call)
            da, db = tl.split(tl.reshape(dy, (TM, GM, 2, 2)))
            xa, xb = tl.split(tl.reshape(xv, (TN, GN, 2, 2)))
            d0, d1 = tl.split(da)
            d2, d3 = tl.split(db)
            x0, x1 = tl.split(xa)
            x2, x3 = tl.split(xb)
            acc += d0[:, None, :, None] * x0[None, :, None, :]
            acc += d1[:, None, :, None] * x1[None, :, None, :]
            acc += d2[:, None, :, None] * x2[None, :, None, :]
            acc += d3[:, None, :, None] * x3[None, :, None, :]
            rowsum += (d0 + d1) + (d2 + d3)
        wo0 += CK
        wrap = wo0 >= WO
        wo0 = tl.where(wrap, 0, wo0)
        ho = tl.where(wrap, ho + 1, ho)
        wrap = ho == HO
        ho = tl.where(wrap, 0, ho)
        n = tl.where(wrap, n + 1, n)
    # W[g*COG+co, ci, kh, kw] of this tile (32-bit offsets: a weight has
    # far fewer than 2**31 elements)
    w_off = (((g * COG + co) * (CPG * KH * KW))[:, None, :, None] +
             (ci * (KH * KW) + tap)[None, :, None, :])
    ok = co_ok[:, None, :, None] & ci_ok[None, :, None, :]
    wv = tl.load(w_ptr + w_off, mask=ok, other=0.0)
    part = acc - wv * rowsum[:, None, :, None]
    tl.store(part_ptr + chunk.to(tl.int64) * (COUT * CPG * KH * KW) + w_off,
             part, mask=ok)
