"""adder2d: the AdderNet layer's op, ``torch.ops.mmpkkd.adder2d``.

:func:`adder2d` validates its arguments and calls the dispatcher op, whose
kernels are the compiled ones of ``mmpkkd._ext`` on the CPU (AVX-512/AVX2
with runtime dispatch) and, on CUDA tensors, the Triton kernels of
:mod:`mmpkkd.ops.adder2d_triton` or the CUDA C++ kernels of ``mmpkkd._ext``
(:func:`mmpkkd.ops.set_cuda_backend`). Where no compiled kernel serves the
input the op runs the pure-PyTorch :func:`mmpkkd.ops.adder2d_reference`
kernels and warns once (:class:`Adder2dFallbackWarning`) with the command
that builds them. Registration (fake kernels, autograd, fallback) is in
:mod:`mmpkkd.ops._library`; the op works with ``torch.compile(...,
fullgraph=True)`` and ``torch.export``.
"""
from typing import Optional

import torch

from ._args import IntOrPair, check_adder2d_args
from ._autocast import autocast_to_fp32
from ._library import NATIVE, Adder2dFallbackWarning
from .cuda_backend import cuda_backends_available, get_cuda_backend

__all__ = ['adder2d', 'native_available', 'Adder2dFallbackWarning']


def native_available(device: Optional[torch.device] = None) -> bool:
    """Whether the compiled op can run (on ``device``, default CPU)."""
    dev_type = torch.device(device).type if device is not None else 'cpu'
    if dev_type == 'cuda':
        return bool(cuda_backends_available())
    return dev_type == 'cpu' and NATIVE


def adder2d(input: torch.Tensor,
            weight: torch.Tensor,
            bias: Optional[torch.Tensor] = None,
            stride: IntOrPair = 1,
            padding: IntOrPair = 0,
            dilation: IntOrPair = 1,
            groups: int = 1) -> torch.Tensor:
    """Adder "convolution" of AdderNet (L1 distance instead of product).

    ``Y[n, co, h, w] = -sum_{ci, kh, kw} |X_pad[n, g*cpg+ci, h*s+kh*d,
    w*s+kw*d] - W[co, ci, kh, kw]| (+ bias[co])`` with zero padding (a padded
    tap contributes ``|w|``), ``g`` the group of ``co`` and ``cpg = C_in /
    groups``; output size as :func:`torch.nn.functional.conv2d`. An empty
    batch gives an empty output; no input channels give ``bias`` (or 0).

    Backward is AdderNet's (unscaled; any adaptive learning rate is applied
    outside the op): ``dW = sum (X_col - W) * dY`` (full precision),
    ``dX_col = sum_co HardTanh(W - X_col) * dY`` folded back with col2im,
    ``dbias = sum dY``. Not twice differentiable.

    Args:
        input: (N, C_in, H, W), float32 or float64, any memory layout.
        weight: (C_out, C_in / groups, kH, kW), same dtype/device.
        bias: optional (C_out,).
        stride, padding, dilation: int or (h, w) pair.
        groups: number of channel groups; must divide C_in and C_out.

    Returns:
        (N, C_out, H_out, W_out) contiguous tensor.

    Under ``torch.autocast`` the op computes in float32 (inputs of lower
    precision are cast, float64 stays float64) and returns float32, like
    ``torch.amp.custom_fwd(cast_inputs=torch.float32)``.

    Raises:
        ValueError: on wrong dimensions, a channel/groups mismatch,
            mismatched devices or dtypes, or an unsupported dtype.

    Example:
        >>> x, w = torch.randn(2, 4, 8, 8), torch.randn(6, 4, 3, 3)
        >>> adder2d(x, w, padding=1).shape
        torch.Size([2, 6, 8, 8])
    """
    input, weight, bias, ctx = autocast_to_fp32(input, weight, bias)
    with ctx:
        geo = check_adder2d_args(input, weight, bias, stride, padding,
                                 dilation, groups)
        # on CUDA the Triton op is called directly (not through adder2d's
        # CUDA kernel), so that torch.compile sees into its kernels
        op = (torch.ops.mmpkkd.adder2d_triton if input.is_cuda
              and get_cuda_backend() == 'triton' else torch.ops.mmpkkd.adder2d)
        return op(input, weight, bias, geo.stride, geo.padding, geo.dilation,
                  geo.groups)
