"""adder2d: the AdderNet layer's op, on the native extension when built.

:func:`adder2d` dispatches to the compiled kernels of ``mmpkkd._ext`` (CPU:
AVX-512/AVX2 with runtime dispatch; CUDA when the extension was built with
it). When the extension is missing -- or was built without CUDA and the input
is on a GPU -- it falls back to :func:`mmpkkd.ops.adder2d_reference` and
warns once (:class:`Adder2dFallbackWarning`) with the command that builds it.
"""
import warnings
from typing import Optional

import torch
from torch.autograd import Function
from torch.autograd.function import once_differentiable

from ._args import IntOrPair, check_adder2d_args
from ._autocast import autocast_to_fp32
from .ext_loader import BUILD_HINT, load_error, load_ext
from .reference import Adder2dReferenceFunction


class Adder2dFallbackWarning(UserWarning):
    """The native adder2d is unavailable; the slow reference is used."""


_WARNED = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(message, Adder2dFallbackWarning, stacklevel=4)


def _get_ext():
    """The native module (indirection point for tests)."""
    return load_ext()


def native_available(device: Optional[torch.device] = None) -> bool:
    """Whether the compiled op can run (on ``device``, default CPU)."""
    ext = _get_ext()
    if ext is None:
        return False
    dev_type = torch.device(device).type if device is not None else 'cpu'
    if dev_type == 'cpu':
        return True
    return dev_type == 'cuda' and bool(ext.with_cuda())


def _native_for(input: torch.Tensor):
    """The extension module if it can handle ``input``, else warn once."""
    ext = _get_ext()
    if ext is None:
        _warn_once(
            'missing', 'mmpkkd.ops.adder2d: the native extension mmpkkd._ext '
            f'is not available ({load_error()}); using the slow pure-PyTorch '
            f'reference instead. To get the fast kernels, {BUILD_HINT}.')
        return None
    dev_type = input.device.type
    if dev_type == 'cpu':
        return ext
    if dev_type == 'cuda':
        if ext.with_cuda():
            return ext
        _warn_once(
            'no_cuda', 'mmpkkd.ops.adder2d: mmpkkd._ext was built without '
            'CUDA kernels; using the slow pure-PyTorch reference on the GPU. '
            'Rebuild with a CUDA toolkit visible (CUDA_HOME set, or '
            'FORCE_CUDA=1): `pip install --no-build-isolation -e .`.')
        return None
    _warn_once(
        f'device_{dev_type}', 'mmpkkd.ops.adder2d: no native kernel for '
        f'device type {dev_type!r}; using the pure-PyTorch reference.')
    return None


class Adder2dFunction(Function):
    """Autograd Function of the native adder2d (see :func:`adder2d`)."""

    @staticmethod
    def forward(ctx, input, weight, bias, geo):
        ext = _get_ext()
        (sh, sw), (ph, pw), (dh, dw) = geo.stride, geo.padding, geo.dilation
        out = ext.forward(input, weight, bias, sh, sw, ph, pw, dh, dw,
                          geo.groups)
        ctx.geo = geo
        ctx.has_bias = bias is not None
        ctx.save_for_backward(input, weight)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        input, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        geo = ctx.geo
        grad_x = grad_w = grad_b = None
        if need_x or need_w:
            (sh, sw), (ph, pw), (dh, dw) = (geo.stride, geo.padding,
                                            geo.dilation)
            grad_x, grad_w = _get_ext().backward(grad_out, input, weight, sh,
                                                 sw, ph, pw, dh, dw,
                                                 geo.groups, need_x, need_w)
        if ctx.has_bias and need_b:
            grad_b = grad_out.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None


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
    groups``; output size as :func:`torch.nn.functional.conv2d`.

    Backward is AdderNet's (unscaled; the layer applies the adaptive
    learning rate): ``dW = sum (X_col - W) * dY`` (full precision),
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

    Uses the compiled ``mmpkkd._ext`` kernels when importable; otherwise
    (or on CUDA with a CPU-only build) the pure-PyTorch
    :func:`~mmpkkd.ops.adder2d_reference`, after a one-time
    :class:`Adder2dFallbackWarning`.

    Raises:
        ValueError: on wrong dimensions, a channel/groups mismatch,
            mismatched devices or dtypes, or an unsupported dtype.
    """
    input, weight, bias, ctx = autocast_to_fp32(input, weight, bias)
    with ctx:
        geo = check_adder2d_args(input, weight, bias, stride, padding,
                                 dilation, groups)
        if _native_for(input) is not None:
            return Adder2dFunction.apply(input, weight, bias, geo)
        return Adder2dReferenceFunction.apply(input, weight, bias, geo)
