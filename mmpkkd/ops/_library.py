"""adder2d and adder2d_int8 on PyTorch's dispatcher (``torch.library``).

Operators in the ``mmpkkd`` namespace::

    adder2d(Tensor input, Tensor weight, Tensor? bias, int[2] stride,
            int[2] padding, int[2] dilation, int groups) -> Tensor
    adder2d_backward(Tensor grad_output, Tensor input, Tensor weight,
                     int[2] stride, int[2] padding, int[2] dilation,
                     int groups, bool[2] output_mask) -> (Tensor, Tensor)
    adder2d_reference / adder2d_reference_backward   (same signatures)
    adder2d_int8(Tensor input, Tensor weight, int[2] stride=1,
                 int[2] padding=0, int[2] dilation=1, int groups=1,
                 int pad_value=0) -> Tensor
    adder2d_int8_affine(Tensor input, Tensor weight, float inv_scale,
                        int zero_point, Tensor alpha, Tensor beta,
                        int[2] stride=1, int[2] padding=0,
                        int[2] dilation=1, int groups=1) -> Tensor

``adder2d`` runs the native CPU kernels of ``mmpkkd._ext`` (which defines
the two schemas in C++) and, on CUDA tensors, the Triton or CUDA C++
kernels (:mod:`mmpkkd.ops.cuda_backend` registers that choice);
``*_reference`` runs the pure-PyTorch kernels of
:mod:`mmpkkd.ops.reference` on any device.
This module adds what both need to work with autograd, ``torch.compile``,
``torch.export`` and ``torch.library.opcheck``:

* a fake (meta) implementation of each op (shapes only);
* ONE autograd formula, registered on both forward ops (AdderNet's
  unscaled gradients; the backward op computes dX and dW, ``dbias = sum
  dY``; not twice differentiable);
* the fallback: where the extension is missing, ``adder2d`` itself is
  defined here with the reference kernels; where it is built without CUDA
  (or for another device type) the reference serves those tensors. Either
  way an :class:`Adder2dFallbackWarning` is issued once.

The int8 ops (inference only, CPU; :mod:`mmpkkd.ops.int8`) get the same
treatment minus autograd: their schemas (native, or defined here with the
exact pure-PyTorch kernels of :mod:`mmpkkd.ops.int8` where the extension
lacks them) and their fake kernels. The CPU kernel set of each native op is
chosen with :mod:`mmpkkd.ops.cpu_isa`.

A gradient that ``output_mask`` does not ask for comes back from the
backward ops as an empty ``(0,)`` tensor.
"""
import warnings
from typing import Callable, List, Optional, Sequence, Tuple

import torch

from ._args import check_adder2d_args
from .ext_loader import BUILD_HINT, EXT, load_error
from .int8 import adder2d_int8_affine_reference, adder2d_int8_reference
from .reference import reference_backward, reference_forward

NAMESPACE = 'mmpkkd'
# keep in sync with csrc/register_ops.cpp (tests/test_ops/test_adder2d.py
# compares them with the schemas the extension registers)
ADDER2D_SCHEMA = ('adder2d(Tensor input, Tensor weight, Tensor? bias, '
                  'int[2] stride, int[2] padding, int[2] dilation, '
                  'int groups) -> Tensor')
ADDER2D_BACKWARD_SCHEMA = (
    'adder2d_backward(Tensor grad_output, Tensor input, Tensor weight, '
    'int[2] stride, int[2] padding, int[2] dilation, int groups, '
    'bool[2] output_mask) -> (Tensor, Tensor)')
ADDER2D_INT8_SCHEMA = (
    'adder2d_int8(Tensor input, Tensor weight, int[2] stride=1, '
    'int[2] padding=0, int[2] dilation=1, int groups=1, int pad_value=0) '
    '-> Tensor')
ADDER2D_INT8_AFFINE_SCHEMA = (
    'adder2d_int8_affine(Tensor input, Tensor weight, float inv_scale, '
    'int zero_point, Tensor alpha, Tensor beta, int[2] stride=1, '
    'int[2] padding=0, int[2] dilation=1, int groups=1) -> Tensor')


class Adder2dFallbackWarning(UserWarning):
    """The native adder2d is unavailable; the slow reference is used."""


_LIB = torch.library.Library(NAMESPACE, 'FRAGMENT')
_WARNED = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(message, Adder2dFallbackWarning, stacklevel=3)


def _native_registered(op: str) -> bool:
    """Whether the loaded extension registered ``torch.ops.mmpkkd.<op>``
    (an extension built from older sources may not)."""
    if EXT is None:
        return False
    try:
        getattr(torch.ops.mmpkkd, op).default
        return True
    except (AttributeError, RuntimeError):
        return False


#: The native float op and its CPU kernels are registered.
NATIVE = _native_registered('adder2d_backward')
#: The native int8 ops (and their CPU kernel-set switch) are registered.
NATIVE_INT8 = _native_registered('adder2d_int8_affine')

# ------------------------------------------------------------- kernels


def _reference_kernel(input: torch.Tensor, weight: torch.Tensor,
                      bias: Optional[torch.Tensor], stride: List[int],
                      padding: List[int], dilation: List[int],
                      groups: int) -> torch.Tensor:
    geo = check_adder2d_args(input, weight, bias, stride, padding, dilation,
                             groups)
    return reference_forward(input, weight, bias, geo)


def _reference_backward_kernel(grad_output: torch.Tensor,
                               input: torch.Tensor, weight: torch.Tensor,
                               stride: List[int], padding: List[int],
                               dilation: List[int], groups: int,
                               output_mask: List[bool]) -> Tuple:
    geo = check_adder2d_args(input, weight, None, stride, padding, dilation,
                             groups)
    need_x, need_w = output_mask
    grad_x, grad_w = reference_backward(grad_output, input, weight, geo,
                                        need_x, need_w)
    return (grad_x if need_x else input.new_empty(0),
            grad_w if need_w else weight.new_empty(0))


def _fallback_kernel(input, weight, bias, stride, padding, dilation, groups):
    """``adder2d`` where no native kernel serves ``input``: the reference."""
    dev_type = input.device.type
    if not NATIVE:
        reason = load_error() or ('it was built from older sources and does '
                                  'not register torch.ops.mmpkkd.adder2d')
        _warn_once(
            'missing', 'mmpkkd.ops.adder2d: the native extension mmpkkd._ext '
            f'is not available ({reason}); using the slow pure-PyTorch '
            f'reference instead. To get the fast kernels, {BUILD_HINT}.')
    elif dev_type == 'cuda':
        _warn_once(
            'no_cuda', 'mmpkkd.ops.adder2d: no GPU kernels are available '
            '(triton is not installed and mmpkkd._ext was built without '
            'CUDA); using the slow pure-PyTorch reference on the GPU. Install '
            'triton, or rebuild with a CUDA toolkit visible (CUDA_HOME set, '
            'or FORCE_CUDA=1): `pip install --no-build-isolation -e .`.')
    else:
        _warn_once(
            f'device_{dev_type}', 'mmpkkd.ops.adder2d: no native kernel for '
            f'device type {dev_type!r}; using the pure-PyTorch reference.')
    return _reference_kernel(input, weight, bias, stride, padding, dilation,
                             groups)


def _int8_missing_warning(op: str) -> None:
    _warn_once(
        'int8', f'mmpkkd.ops.{op}: the native int8 kernels of mmpkkd._ext '
        'are not available; using the slow pure-PyTorch reference instead. '
        f'To get them, {BUILD_HINT}.')


def _int8_fallback_kernel(input, weight, stride=1, padding=0, dilation=1,
                          groups=1, pad_value=0):
    """``adder2d_int8`` without the native kernels: the reference."""
    _int8_missing_warning('adder2d_int8')
    return adder2d_int8_reference(input, weight, stride, padding, dilation,
                                  groups, pad_value)


def _int8_affine_fallback_kernel(input, weight, inv_scale, zero_point,
                                 alpha, beta, stride=1, padding=0,
                                 dilation=1, groups=1):
    """``adder2d_int8_affine`` without the native kernels: the reference."""
    _int8_missing_warning('adder2d_int8_affine')
    return adder2d_int8_affine_reference(input, weight, inv_scale,
                                         zero_point, alpha, beta, stride,
                                         padding, dilation, groups)


# -------------------------------------------------------- fake kernels


def _adder2d_fake(input, weight, bias, stride, padding, dilation, groups):
    geo = check_adder2d_args(input, weight, bias, stride, padding, dilation,
                             groups)
    return input.new_empty(
        (geo.batch, geo.out_channels, geo.out_height, geo.out_width))


def _adder2d_backward_fake(grad_output, input, weight, stride, padding,
                           dilation, groups, output_mask):
    check_adder2d_args(input, weight, None, stride, padding, dilation,
                       groups)
    need_x, need_w = output_mask
    return (input.new_empty(input.shape if need_x else (0, )),
            weight.new_empty(weight.shape if need_w else (0, )))


def _int8_out_shape(input, weight, stride, padding, dilation,
                    groups) -> Tuple[int, int, int, int]:
    geo = check_adder2d_args(
        torch.empty(input.shape, device='meta'),
        torch.empty(weight.shape, device='meta'), None, stride, padding,
        dilation, groups)
    return (geo.batch, geo.out_channels, geo.out_height, geo.out_width)


def _adder2d_int8_fake(input, weight, stride=1, padding=0, dilation=1,
                       groups=1, pad_value=0):
    return input.new_empty(
        _int8_out_shape(input, weight, stride, padding, dilation, groups),
        dtype=torch.int32)


def _adder2d_int8_affine_fake(input, weight, inv_scale, zero_point, alpha,
                              beta, stride=1, padding=0, dilation=1,
                              groups=1):
    return input.new_empty(
        _int8_out_shape(input, weight, stride, padding, dilation, groups),
        dtype=torch.float32)


# ------------------------------------------------------------ autograd


def _setup_context(ctx, inputs: Sequence, output: torch.Tensor) -> None:
    input, weight, bias, stride, padding, dilation, groups = inputs
    ctx.save_for_backward(input, weight)
    ctx.geometry = (stride, padding, dilation, groups)
    ctx.has_bias = bias is not None


def _make_backward(backward_op: Callable) -> Callable:
    """The autograd formula of a forward op whose gradients come from
    ``backward_op`` (the same formula for the native op and the
    reference)."""

    def backward(ctx, grad_output: torch.Tensor) -> Tuple:
        input, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x = grad_w = grad_b = None
        if need_x or need_w:
            grad_x, grad_w = backward_op(grad_output, input, weight,
                                         *ctx.geometry, [need_x, need_w])
            grad_x = grad_x if need_x else None
            grad_w = grad_w if need_w else None
        if ctx.has_bias and need_b:
            grad_b = grad_output.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None, None, None, None

    return backward


# --------------------------------------------------------- registration


if not NATIVE:  # the extension did not define them: same schemas here
    _LIB.define(ADDER2D_SCHEMA)
    _LIB.define(ADDER2D_BACKWARD_SCHEMA)
# the reference serves every device the native kernels do not
_LIB.impl('adder2d', _fallback_kernel, 'CompositeExplicitAutograd')
_LIB.impl('adder2d_backward', _reference_backward_kernel,
          'CompositeExplicitAutograd')

_LIB.define(ADDER2D_SCHEMA.replace('adder2d(', 'adder2d_reference(', 1))
_LIB.define(
    ADDER2D_BACKWARD_SCHEMA.replace('adder2d_backward(',
                                    'adder2d_reference_backward(', 1))
_LIB.impl('adder2d_reference', _reference_kernel, 'CompositeExplicitAutograd')
_LIB.impl('adder2d_reference_backward', _reference_backward_kernel,
          'CompositeExplicitAutograd')

for _fwd, _bwd in (('adder2d', 'adder2d_backward'),
                   ('adder2d_reference', 'adder2d_reference_backward')):
    torch.library.register_fake(f'{NAMESPACE}::{_fwd}', _adder2d_fake,
                                lib=_LIB)
    torch.library.register_fake(f'{NAMESPACE}::{_bwd}',
                                _adder2d_backward_fake, lib=_LIB)
    torch.library.register_autograd(
        f'{NAMESPACE}::{_fwd}',
        _make_backward(getattr(torch.ops.mmpkkd, _bwd)),
        setup_context=_setup_context,
        lib=_LIB)

if not NATIVE_INT8:  # same schemas, exact reference kernels
    _LIB.define(ADDER2D_INT8_SCHEMA)
    _LIB.define(ADDER2D_INT8_AFFINE_SCHEMA)
    _LIB.impl('adder2d_int8', _int8_fallback_kernel,
              'CompositeExplicitAutograd')
    _LIB.impl('adder2d_int8_affine', _int8_affine_fallback_kernel,
              'CompositeExplicitAutograd')
torch.library.register_fake(f'{NAMESPACE}::adder2d_int8', _adder2d_int8_fake,
                            lib=_LIB)
torch.library.register_fake(f'{NAMESPACE}::adder2d_int8_affine',
                            _adder2d_int8_affine_fake, lib=_LIB)
