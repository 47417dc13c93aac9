"""Pure-PyTorch reference of the adder2d op (test oracle and fallback).

Forward (AdderNet, Chen et al. CVPR 2020)::

    Y[n, co, h, w] = -sum_{ci, kh, kw} |X_pad[n, g*cpg + ci, h*s + kh*d, w*s + kw*d]
                                        - W[co, ci, kh, kw]|  (+ bias[co])

Backward (AdderNet's training gradients, *unscaled*: the adaptive learning
rate is applied by the layer, not here)::

    dW[co, k]    = sum_{n, p} (X_col[k, p] - W[co, k]) * dY[co, p]
    dX_col[k, p] = sum_co HardTanh(W[co, k] - X_col[k, p]) * dY[co, p]
    dX           = col2im(dX_col)        (taps that fall on padding dropped)
    dbias        = sum dY

The implementation broadcasts |X_col - W| like the original code but in
chunks over batch, output channels and output positions, so no temporary
exceeds ``CHUNK_BYTES`` (64 MB); the original materialises the full
N*C_out*K*H*W tensor. Its kernels share no code with the native ones, which
is what makes it usable as their oracle (run it in float64). They are the
kernels of the dispatcher op ``torch.ops.mmpkkd.adder2d_reference`` (any
device) and of ``torch.ops.mmpkkd.adder2d`` where the native extension is
missing; both ops share one autograd formula (:mod:`mmpkkd.ops._library`).
"""
from typing import Iterator, Optional, Tuple

import torch
import torch.nn.functional as F

from ._args import Adder2dGeometry, IntOrPair, check_adder2d_args
from ._autocast import autocast_to_fp32

CHUNK_BYTES = 64 << 20


def _ranges(total: int, step: int) -> Iterator[Tuple[int, int]]:
    for start in range(0, total, step):
        yield start, min(start + step, total)


def _chunking(batch: int, cog: int, k: int, length: int, itemsize: int,
              budget_bytes: int) -> Tuple[int, int, int]:
    """Chunk sizes (batch, out-channels, positions) for the broadcasts.

    Keeps both the unfolded columns (nb, K, L) and the broadcast
    temporaries (nb, cb, K, lb) within ``budget_bytes``.
    """
    budget = max(1, budget_bytes // itemsize)
    nb = max(1, min(batch, budget // max(1, k * length)))
    lb = length if nb * k * length <= budget else max(1, budget // k)
    lb = min(lb, length)
    cb = max(1, min(cog, budget // max(1, nb * k * lb)))
    return nb, cb, lb


def _unfold(x: torch.Tensor, geo) -> torch.Tensor:
    return F.unfold(
        x,
        geo.kernel,
        dilation=geo.dilation,
        padding=geo.padding,
        stride=geo.stride)


def reference_forward(x: torch.Tensor, w: torch.Tensor,
                      bias: Optional[torch.Tensor],
                      geo: Adder2dGeometry) -> torch.Tensor:
    """Forward of the reference: (N, C_out, H_out, W_out), contiguous."""
    n_img, cpg, cog = geo.batch, geo.cpg, geo.cog
    length = geo.out_height * geo.out_width
    k = w.shape[1] * w.shape[2] * w.shape[3]
    if k == 0:  # no input channels: every output is an empty sum
        out = x.new_zeros(n_img, geo.out_channels, geo.out_height,
                          geo.out_width)
        return out if bias is None else out + bias.view(1, -1, 1, 1)
    out = x.new_empty(n_img, geo.out_channels, length)
    nb, cb, lb = _chunking(n_img, cog, k, length, x.element_size(),
                           CHUNK_BYTES)
    for g in range(geo.groups):
        xg = x[:, g * cpg:(g + 1) * cpg]
        wg = w[g * cog:(g + 1) * cog].reshape(cog, k)
        for n0, n1 in _ranges(n_img, nb):
            cols = _unfold(xg[n0:n1], geo)  # (nb, K, L)
            for l0, l1 in _ranges(length, lb):
                c = cols[:, None, :, l0:l1]  # (nb, 1, K, lb)
                for c0, c1 in _ranges(cog, cb):
                    wc = wg[None, c0:c1, :, None]  # (1, cb, K, 1)
                    dist = (c - wc).abs_().sum(2)  # (nb, cb, lb)
                    out[n0:n1, g * cog + c0:g * cog + c1, l0:l1] = -dist
    if bias is not None:
        out += bias.view(1, -1, 1)
    return out.view(n_img, geo.out_channels, geo.out_height, geo.out_width)


def reference_backward(grad_out: torch.Tensor, x: torch.Tensor,
                       w: torch.Tensor, geo: Adder2dGeometry, need_x: bool,
                       need_w: bool) -> Tuple[Optional[torch.Tensor], ...]:
    """(grad_input, grad_weight) of the reference, contiguous; an entry
    that is not needed is None."""
    n_img, cpg, cog = geo.batch, geo.cpg, geo.cog
    length = geo.out_height * geo.out_width
    k = w.shape[1] * w.shape[2] * w.shape[3]
    gy = grad_out.reshape(n_img, geo.out_channels, length)
    grad_x = x.new_zeros(x.shape) if need_x else None
    grad_w = w.new_zeros(geo.out_channels, k) if need_w else None
    if k == 0 or n_img == 0:  # empty sums: zero gradients
        return grad_x, (grad_w.view_as(w) if need_w else None)
    # three live temporaries (diff, product, clipped) -> a third each
    nb, cb, lb = _chunking(n_img, cog, k, length, x.element_size(),
                           CHUNK_BYTES // 3)
    for g in range(geo.groups):
        xg = x[:, g * cpg:(g + 1) * cpg]
        wg = w[g * cog:(g + 1) * cog].reshape(cog, k)
        for n0, n1 in _ranges(n_img, nb):
            cols = _unfold(xg[n0:n1], geo)  # (nb, K, L)
            grad_cols = torch.zeros_like(cols) if need_x else None
            for l0, l1 in _ranges(length, lb):
                c = cols[:, None, :, l0:l1]
                for c0, c1 in _ranges(cog, cb):
                    co0, co1 = g * cog + c0, g * cog + c1
                    diff = c - wg[None, c0:c1, :, None]  # X - W
                    dy = gy[n0:n1, co0:co1, None, l0:l1]  # (nb, cb, 1, lb)
                    if need_w:
                        grad_w[co0:co1] += (diff * dy).sum((0, 3))
                    if need_x:
                        # HardTanh(W - X) = -clip(X - W, -1, 1)
                        ht = diff.clamp_(-1.0, 1.0).neg_()
                        grad_cols[:, :, l0:l1] += (ht * dy).sum(1)
            if need_x:
                grad_x[n0:n1, g * cpg:(g + 1) * cpg] += F.fold(
                    grad_cols, (geo.height, geo.width),
                    geo.kernel,
                    dilation=geo.dilation,
                    padding=geo.padding,
                    stride=geo.stride)
    if need_w:
        grad_w = grad_w.view_as(w)
    return grad_x, grad_w


def adder2d_reference(input: torch.Tensor,
                      weight: torch.Tensor,
                      bias: Optional[torch.Tensor] = None,
                      stride: IntOrPair = 1,
                      padding: IntOrPair = 0,
                      dilation: IntOrPair = 1,
                      groups: int = 1) -> torch.Tensor:
    """Pure-PyTorch adder2d with AdderNet's forward and backward.

    Same semantics and signature as :func:`mmpkkd.ops.adder2d`; works on
    any device, float32 and float64 (float64 is the test oracle). Under
    ``torch.autocast`` it computes in float32 and returns float32. Runs the
    dispatcher op ``torch.ops.mmpkkd.adder2d_reference``.
    """
    input, weight, bias, ctx = autocast_to_fp32(input, weight, bias)
    with ctx:
        geo = check_adder2d_args(input, weight, bias, stride, padding,
                                 dilation, groups)
        return torch.ops.mmpkkd.adder2d_reference(input, weight, bias,
                                                  geo.stride, geo.padding,
                                                  geo.dilation, geo.groups)
