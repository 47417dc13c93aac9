"""Int8 adder2d on the CPU: ``-sum |x - w|`` over int8 operands, exact.

:func:`adder2d_int8` and :func:`adder2d_int8_affine` (the fused form the
int8 inference layers of :mod:`mmpkkd.quantization` use: float input
quantised on the fly, the int32 sum mapped per channel by a folded
BatchNorm) validate their arguments and call the dispatcher ops
``torch.ops.mmpkkd.adder2d_int8`` / ``adder2d_int8_affine``. Their kernels
are the native ones of ``mmpkkd._ext`` (``csrc/cpu/adder2d_int8*.cpp``:
``vpsadbw`` on AVX-512BW or AVX2, a portable fallback, chosen at run time
(:func:`mmpkkd.ops.set_cpu_isa`); OpenMP threads) or, without the
extension, the exact pure-PyTorch :func:`adder2d_int8_reference` /
:func:`adder2d_int8_affine_reference` after a one-time
:class:`~mmpkkd.ops.Adder2dFallbackWarning`. Schemas, fallback and fake
kernels are registered by :mod:`mmpkkd.ops._library`, like the float op's.
"""
import torch
import torch.nn.functional as F

from ._args import IntOrPair, check_adder2d_args
from .reference import adder2d_reference


def _check(x: torch.Tensor, w: torch.Tensor, x_dtype: torch.dtype,
           name: str, stride, padding, dilation, groups):
    """Validate the tensors of an int8 adder call; return the geometry."""
    for arg, t in (('input', x), ('weight', w)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f'{name}: {arg} must be a torch.Tensor, got '
                             f'{type(t).__name__}')
        if t.device.type != 'cpu':
            raise ValueError(f'{name}: runs on the CPU only, but {arg} is on '
                             f'{t.device}; move it with .cpu()')
    if x.dtype != x_dtype:
        hint = ('quantise it first, e.g. with mmpkkd.quantization' if
                x_dtype == torch.int8 else 'cast it with .float()')
        raise ValueError(f'{name}: input must be {x_dtype}, got {x.dtype}; '
                         f'{hint}')
    if w.dtype != torch.int8:
        raise ValueError(f'{name}: weight must be torch.int8, got {w.dtype}')
    # shapes, groups, stride/padding/dilation (dtypes checked above): the
    # shared checks, run on shape-only stand-ins
    return check_adder2d_args(
        torch.empty(x.shape, device='meta'),
        torch.empty(w.shape, device='meta'), None, stride, padding, dilation,
        groups)


def adder2d_int8_reference(x: torch.Tensor,
                           w: torch.Tensor,
                           stride: IntOrPair = 1,
                           padding: IntOrPair = 0,
                           dilation: IntOrPair = 1,
                           groups: int = 1,
                           pad_value: int = 0) -> torch.Tensor:
    """Pure-PyTorch :func:`adder2d_int8` (exact: float64 holds every sum).

    Pads with ``pad_value`` explicitly, then runs
    :func:`~mmpkkd.ops.adder2d_reference` in float64 and rounds back to
    int32. The fallback when the extension is missing, not its test oracle.
    """
    geo = _check(x, w, torch.int8, 'adder2d_int8_reference', stride, padding,
                 dilation, groups)
    (ph, pw) = geo.padding
    xp = F.pad(x.double(), (pw, pw, ph, ph), value=float(pad_value))
    out = adder2d_reference(xp, w.double(), None, geo.stride, 0, geo.dilation,
                            geo.groups)
    return out.round().to(torch.int32)


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raise ValueError if ``x`` holds NaN or infinite values.

    Int8 has no code for them, so every int8 path (the native kernels, this
    module's references, :mod:`mmpkkd.quantization`) refuses them with the
    same message rather than map them to an arbitrary code.

    Example:
        >>> check_finite(torch.tensor([0.5, float('nan')]), 'layer1')
        Traceback (most recent call last):
        ValueError: layer1: the input holds 1 NaN and 0 infinite value(s) ...
    """
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        nan, inf = int(torch.isnan(x).sum()), int(torch.isinf(x).sum())
        raise ValueError(
            f'{name}: the input holds {nan} NaN and {inf} infinite value(s) '
            f'among {x.numel()}; int8 has no code for NaN or infinity. Find '
            'where the float network produces them (e.g. '
            'torch.isfinite(x).all() on the input of each layer) and fix the '
            'data or the model.')


def quantize_per_tensor_int8(x: torch.Tensor, inv_scale: float,
                             zero_point: int) -> torch.Tensor:
    """``clamp(round(x * inv_scale) + zero_point, -128, 127)`` as int8.

    The codes of a tensor on one grid (per-tensor affine quantisation, as
    :func:`torch.quantize_per_tensor` with ``scale = 1 / inv_scale``, but a
    plain int8 tensor). Rounds half to even, in float32 like the native
    kernels (use an ``inv_scale`` that is a float32 value for bit-identical
    codes). Values beyond the grid saturate to -128 or 127.

    Raises:
        ValueError: If ``x`` holds NaN or infinite values (int8 has no code
            for them; see :func:`check_finite`).

    Example:
        >>> quantize_per_tensor_int8(
        ...     torch.tensor([-1.0, 0.0, 0.02, 9.0]), 100.0, 0)
        tensor([-100,    0,    2,  127], dtype=torch.int8)
    """
    check_finite(x, 'quantize_per_tensor_int8')
    q = torch.round(x.float() * inv_scale) + zero_point
    return q.clamp_(-128, 127).to(torch.int8)


def adder2d_int8_affine_reference(x: torch.Tensor,
                                  w: torch.Tensor,
                                  inv_scale: float,
                                  zero_point: int,
                                  alpha: torch.Tensor,
                                  beta: torch.Tensor,
                                  stride: IntOrPair = 1,
                                  padding: IntOrPair = 0,
                                  dilation: IntOrPair = 1,
                                  groups: int = 1) -> torch.Tensor:
    """Pure-PyTorch :func:`adder2d_int8_affine`: quantise with
    :func:`quantize_per_tensor_int8`, sum exactly with
    :func:`adder2d_int8_reference` (padding with ``zero_point``), map the
    sum per channel. The fallback when the extension is missing.

    Raises:
        ValueError: If ``x`` holds NaN or infinite values.
    """
    check_finite(x, 'adder2d_int8_affine')
    s = adder2d_int8_reference(
        quantize_per_tensor_int8(x, inv_scale, zero_point), w, stride,
        padding, dilation, groups, int(zero_point))
    return s.float() * alpha.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)


def adder2d_int8(x: torch.Tensor,
                 w: torch.Tensor,
                 stride: IntOrPair = 1,
                 padding: IntOrPair = 0,
                 dilation: IntOrPair = 1,
                 groups: int = 1,
                 pad_value: int = 0) -> torch.Tensor:
    """Exact int8 adder "convolution": ``-sum |x - w|`` in int32.

    ``Y[n, co, h, w] = -sum_{ci, kh, kw} |X_pad[n, g*cpg + ci, h*s + kh*d,
    w*s + kw*d] - W[co, ci, kh, kw]|`` with ``g`` the group of ``co`` and
    ``cpg = C_in / groups``; ``X_pad`` is ``x`` padded with ``pad_value``
    (default 0, i.e. zero padding). Output size as
    :func:`torch.nn.functional.conv2d`. Every difference and sum is exact
    (the reduction length ``C_in/groups * kH * kW`` must stay below
    ``2**31 / 255``).

    Args:
        x: (N, C_in, H, W) torch.int8, CPU, any memory layout.
        w: (C_out, C_in / groups, kH, kW) torch.int8, CPU.
        stride, padding, dilation: int or (h, w) pair.
        groups: number of channel groups; must divide C_in and C_out.
        pad_value: int8 value of the padded taps. A quantised layer whose
            zero point is ``z`` pads with ``z``, the code of a real 0.

    Returns:
        (N, C_out, H_out, W_out) contiguous torch.int32.

    Raises:
        ValueError: on a wrong dtype, device or shape, a channel/groups
            mismatch, or a ``pad_value`` outside [-128, 127].

    Example:
        >>> x = torch.randint(-128, 128, (2, 16, 8, 8), dtype=torch.int8)
        >>> w = torch.randint(-128, 128, (32, 16, 3, 3), dtype=torch.int8)
        >>> y = adder2d_int8(x, w, padding=1)
        >>> y.shape, y.dtype
        (torch.Size([2, 32, 8, 8]), torch.int32)
    """
    geo = _check(x, w, torch.int8, 'adder2d_int8', stride, padding, dilation,
                 groups)
    if isinstance(pad_value, bool) or not isinstance(pad_value, int) or not (
            -128 <= pad_value <= 127):
        raise ValueError('adder2d_int8: pad_value must be an int in '
                         f'[-128, 127], got {pad_value!r}')
    return torch.ops.mmpkkd.adder2d_int8(x, w, geo.stride, geo.padding,
                                         geo.dilation, geo.groups, pad_value)


def adder2d_int8_affine(x: torch.Tensor,
                        w: torch.Tensor,
                        inv_scale: float,
                        zero_point: int,
                        alpha: torch.Tensor,
                        beta: torch.Tensor,
                        stride: IntOrPair = 1,
                        padding: IntOrPair = 0,
                        dilation: IntOrPair = 1,
                        groups: int = 1) -> torch.Tensor:
    """Quantise, int8 adder2d, per-channel affine: one fused pass.

    Computes ``alpha[c] * S + beta[c]`` in float32 with ``S =
    adder2d_int8(q, w, ..., pad_value=zero_point)`` and ``q =
    quantize_per_tensor_int8(x, inv_scale, zero_point)`` (the padding is the
    code of a real 0). ``alpha``/``beta`` carry the scale of the shared grid
    and a folded BatchNorm. Values beyond the grid saturate to -128 or 127;
    NaN and infinite inputs are refused (int8 has no code for them), by the
    native kernels and the fallback alike.

    Args:
        x: (N, C_in, H, W) float32, CPU.
        w: (C_out, C_in / groups, kH, kW) int8 codes on the same grid.
        inv_scale: 1 / grid step (positive).
        zero_point: int8 code of a real 0.
        alpha, beta: (C_out,) float32.
        stride, padding, dilation, groups: as :func:`adder2d_int8`.

    Returns:
        (N, C_out, H_out, W_out) float32.

    Raises:
        ValueError: on a wrong dtype, device, shape or grid, and if ``x``
            holds NaN or infinite values.

    Example:
        >>> x = torch.rand(1, 16, 8, 8)
        >>> w = torch.randint(-128, 128, (16, 16, 3, 3), dtype=torch.int8)
        >>> a, b = torch.full((16, ), 0.01), torch.zeros(16)
        >>> adder2d_int8_affine(x, w, 127.0, -128, a, b, padding=1).shape
        torch.Size([1, 16, 8, 8])
    """
    geo = _check(x, w, torch.float32, 'adder2d_int8_affine', stride, padding,
                 dilation, groups)
    if not inv_scale > 0:
        raise ValueError('adder2d_int8_affine: inv_scale must be positive, '
                         f'got {inv_scale!r}')
    if not -128 <= zero_point <= 127:
        raise ValueError('adder2d_int8_affine: zero_point must be in [-128, '
                         f'127], got {zero_point!r}')
    for name, t in (('alpha', alpha), ('beta', beta)):
        if (not isinstance(t, torch.Tensor) or t.shape != (w.shape[0], )
                or t.dtype != torch.float32):
            raise ValueError(f'adder2d_int8_affine: {name} must be a float32 '
                             f'tensor of shape ({w.shape[0]},)')
    return torch.ops.mmpkkd.adder2d_int8_affine(
        x, w, float(inv_scale), int(zero_point), alpha, beta, geo.stride,
        geo.padding, geo.dilation, geo.groups)
