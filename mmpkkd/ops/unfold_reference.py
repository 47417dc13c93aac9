"""The ORIGINAL AdderNet algorithm, re-implemented as a baseline.

Source credited: AdderNet, Chen et al., "AdderNet: Do We Really Need
Multiplications in Deep Learning?", CVPR 2020; official code
https://github.com/huawei-noah/AdderNet (``adder.py``), Copyright (C) 2020
Huawei Technologies Co., Ltd., released under the BSD 3-Clause License (the
repository's ``License.txt``). This module is written anew from that
description of the algorithm; it does not contain the original's code.

This reproduces the algorithm and memory behaviour of ``adder.py`` in the
official AdderNet code: the whole batch is unfolded
with ``F.unfold`` into one (K, H_out*W_out*N) column matrix and the output is
``-(W[:, :, None] - X_col[None]).abs().sum(1)``, i.e. a single broadcast
temporary of C_out * K * H_out * W_out * N elements (the size of the layer's
multiply-accumulate count). Its backward builds two more temporaries of that
size. It is the baseline of ``tools/benchmarks/benchmark_adder.py`` and a second
oracle in the tests -- it is NOT meant for training (memory grows with the
MAC count; a ResNet-20 layer at batch 64 already needs ~0.6 GB per
temporary).

Scope as in the original: square or rectangular kernels, int stride and
padding, no dilation, no groups, no bias. The original's backward also
multiplies the weight gradient by the adaptive learning-rate factor
``eta * sqrt(numel(W)) / ||dW||_2`` with eta = 0.2; here that is off by default
(``adaptive_lr=False``) so the gradients are comparable with
:func:`mmpkkd.ops.adder2d`, whose layer applies the scaling itself.
"""
import math

import torch
import torch.nn.functional as F
from torch.autograd import Function

ADAPTIVE_ETA = 0.2  # the original divides by 5


class _ColumnAdder(Function):
    """Y = -sum_k |W_col[:, k, None] - X_col[None, k, :]| (full broadcast)."""

    @staticmethod
    def forward(ctx, w_col, x_col, adaptive_lr):
        ctx.adaptive_lr = adaptive_lr
        ctx.save_for_backward(w_col, x_col)
        return (w_col.unsqueeze(2) - x_col.unsqueeze(0)).abs().sum(1).neg()

    @staticmethod
    def backward(ctx, grad_out):
        w_col, x_col = ctx.saved_tensors
        diff = x_col.unsqueeze(0) - w_col.unsqueeze(2)  # (C_out, K, cols)
        gy = grad_out.unsqueeze(1)
        grad_w = (diff * gy).sum(2)  # full-precision gradient
        if ctx.adaptive_lr:
            scale = ADAPTIVE_ETA * math.sqrt(w_col.numel())
            grad_w = grad_w / grad_w.norm(p=2).clamp(min=1e-12) * scale
        grad_x = (diff.clamp(-1, 1).neg() * gy).sum(0)  # HardTanh(W - X)
        return grad_w, grad_x, None


def adder2d_unfold_original(x: torch.Tensor,
                            w: torch.Tensor,
                            stride: int = 1,
                            padding: int = 0,
                            adaptive_lr: bool = False) -> torch.Tensor:
    """Original-AdderNet adder2d (baseline, not for training).

    Args:
        x: input (N, C, H, W).
        w: weight (C_out, C, kH, kW).
        stride, padding: ints, as in the original code.
        adaptive_lr: apply the original's in-backward gradient scaling.

    Returns:
        (N, C_out, H_out, W_out).
    """
    n_img, chans, height, width = x.shape
    c_out, w_chans, kh, kw = w.shape
    if w_chans != chans:
        raise ValueError(f'adder2d_unfold_original: weight expects {w_chans} '
                         f'input channels, input has {chans} (no groups)')
    h_out = (height + 2 * padding - kh) // stride + 1
    w_out = (width + 2 * padding - kw) // stride + 1
    # Unfold every (image, channel) plane as one big batch-1 image, then
    # reorder the columns to (K, H_out*W_out*N) with the image index fastest.
    cols = F.unfold(
        x.reshape(1, n_img * chans, height, width), (kh, kw),
        padding=padding,
        stride=stride)
    cols = cols.view(n_img, chans * kh * kw, h_out * w_out)
    cols = cols.permute(1, 2, 0).contiguous().view(chans * kh * kw, -1)
    out = _ColumnAdder.apply(w.reshape(c_out, -1), cols, adaptive_lr)
    return out.view(c_out, h_out, w_out, n_img).permute(3, 0, 1,
                                                        2).contiguous()
