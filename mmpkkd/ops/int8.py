"""Int8 adder2d on the CPU: ``-sum |x - w|`` over int8 operands, exact.

:func:`adder2d_int8` runs the native kernels registered by ``mmpkkd._ext``
as ``torch.ops.mmpkkd.adder2d_int8`` (``csrc/cpu/adder2d_int8*.cpp``:
``vpsadbw`` on AVX-512BW or AVX2, a portable fallback, chosen at run time;
OpenMP threads). :func:`adder2d_int8_affine` is the fused form the int8
inference layers use (:mod:`mmpkkd.quantization`): float input quantised on
the fly, the int32 sum mapped per channel by a folded BatchNorm. Without
the extension both fall back to :func:`adder2d_int8_reference` (exact, slow)
after a one-time :class:`~mmpkkd.ops.Adder2dFallbackWarning`.
"""
import warnings
from typing import List

import torch
import torch.nn.functional as F

from ._args import IntOrPair, check_adder2d_args, to_pair
from .ext_loader import BUILD_HINT, load_ext
from .reference import adder2d_reference

_WARNED = set()


def _warn_once(key: str, message: str) -> None:
    from .adder2d import Adder2dFallbackWarning
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(message, Adder2dFallbackWarning, stacklevel=3)


def _native_ops() -> bool:
    """Whether ``mmpkkd._ext`` registered the int8 ops (an extension built
    from sources older than the int8 kernels does not)."""
    if load_ext() is None:
        return False
    return hasattr(torch.ops.mmpkkd, 'adder2d_int8_affine')


NATIVE = _native_ops()


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
    module's fallback, :mod:`mmpkkd.quantization`) refuses them with the
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


def quantize_int8(x: torch.Tensor, inv_scale: float,
                  zero_point: int) -> torch.Tensor:
    """``clamp(round(x * inv_scale) + zero_point, -128, 127)`` as int8.

    Rounds half to even, in float32 like the native kernels (use an
    ``inv_scale`` that is a float32 value for bit-identical codes). Values
    beyond the grid saturate to -128 or 127.

    Raises:
        ValueError: If ``x`` holds NaN or infinite values (int8 has no code
            for them; see :func:`check_finite`).

    Example:
        >>> quantize_int8(torch.tensor([-1.0, 0.0, 0.02, 9.0]), 100.0, 0)
        tensor([-100,    0,    2,  127], dtype=torch.int8)
    """
    check_finite(x, 'quantize_int8')
    q = torch.round(x.float() * inv_scale) + zero_point
    return q.clamp_(-128, 127).to(torch.int8)


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
    if NATIVE:
        return torch.ops.mmpkkd.adder2d_int8(x, w, geo.stride, geo.padding,
                                             geo.dilation, geo.groups,
                                             pad_value)
    _warn_once('int8', 'mmpkkd.ops.adder2d_int8: the native int8 kernels of '
               'mmpkkd._ext are not available; using the slow pure-PyTorch '
               f'reference instead. To get them, {BUILD_HINT}.')
    return adder2d_int8_reference(x, w, geo.stride, geo.padding, geo.dilation,
                                  geo.groups, pad_value)


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
    quantize_int8(x, inv_scale, zero_point)`` (the padding is the code of a
    real 0). ``alpha``/``beta`` carry the scale of the shared grid and a
    folded BatchNorm. Values beyond the grid saturate to -128 or 127; NaN
    and infinite inputs are refused (int8 has no code for them), by the
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
    if NATIVE:
        return torch.ops.mmpkkd.adder2d_int8_affine(
            x, w, float(inv_scale), int(zero_point), alpha, beta, geo.stride,
            geo.padding, geo.dilation, geo.groups)
    _warn_once('int8', 'mmpkkd.ops.adder2d_int8_affine: the native int8 '
               'kernels of mmpkkd._ext are not available; using the slow '
               f'pure-PyTorch reference instead. To get them, {BUILD_HINT}.')
    check_finite(x, 'adder2d_int8_affine')
    s = adder2d_int8_reference(
        quantize_int8(x, inv_scale, zero_point), w, geo.stride, geo.padding,
        geo.dilation, geo.groups, int(zero_point))
    return s.float() * alpha.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)


# ------------------------------------------------------------- kernel sets
def _require_native(name: str) -> None:
    if not NATIVE:
        raise RuntimeError(f'{name}: the native int8 kernels are not built; '
                           f'{BUILD_HINT}')


def int8_cpu_isa() -> str:
    """The int8 kernel set in use: ``'avx512'``, ``'avx2'`` or
    ``'generic'``."""
    _require_native('int8_cpu_isa')
    return torch.ops.mmpkkd.adder2d_int8_cpu_isa('')


def set_int8_cpu_isa(name: str) -> str:
    """Force the int8 kernel set (``'auto'`` = best supported); returns the
    active one. The env var ``MMPKKD_INT8_CPU_ISA`` sets it at start-up.

    Raises:
        ValueError: unknown name, or an ISA this CPU lacks.
    """
    _require_native('set_int8_cpu_isa')
    try:
        return torch.ops.mmpkkd.adder2d_int8_cpu_isa(name)
    except RuntimeError as err:  # dispatcher wraps the C++ ValueError
        raise ValueError(str(err).split('\n')[0]) from err


def supported_int8_cpu_isas() -> List[str]:
    """Int8 kernel sets this CPU can run, best first."""
    _require_native('supported_int8_cpu_isas')
    return list(torch.ops.mmpkkd.adder2d_int8_supported_isas())


def _register_fakes() -> None:
    """Shape-only kernels, so the ops trace under torch.compile/export."""
    def out_shape(x, w, stride, padding, dilation):
        (sh, sw), (ph, pw), (dh, dw) = (to_pair(stride, 'stride', 1),
                                        to_pair(padding, 'padding', 0),
                                        to_pair(dilation, 'dilation', 1))
        kh, kw = w.shape[2], w.shape[3]
        ho = (x.shape[2] + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        wo = (x.shape[3] + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        return (x.shape[0], w.shape[0], ho, wo)

    @torch.library.register_fake('mmpkkd::adder2d_int8')
    def _(x, w, stride=1, padding=0, dilation=1, groups=1, pad_value=0):
        return x.new_empty(out_shape(x, w, stride, padding, dilation),
                           dtype=torch.int32)

    @torch.library.register_fake('mmpkkd::adder2d_int8_affine')
    def _(x, w, inv_scale, zero_point, alpha, beta, stride=1, padding=0,
          dilation=1, groups=1):
        return x.new_empty(out_shape(x, w, stride, padding, dilation))


if NATIVE:
    _register_fakes()
