"""Which kernels ``torch.ops.mmpkkd.adder2d`` runs on CUDA tensors.

Two GPU backends compute the same op:

* ``'triton'`` (default) -- the Triton kernels of
  :mod:`mmpkkd.ops.adder2d_triton` (register-blocked, visible to
  ``torch.compile``);
* ``'cuda'`` -- the hand-written CUDA C++ kernels of ``mmpkkd._ext``
  (``torch.ops.mmpkkd.adder2d_cuda``), built only on request
  (``MMPKKD_WITH_CUDA=1``). They predate the register-blocked Triton
  kernels and are kept as an independent second implementation to check
  the Triton kernels against on a GPU (docs/user_guides/gpu.md).

Choose with the environment variable ``MMPKKD_CUDA_BACKEND=triton|cuda``
(read at import) or :func:`set_cuda_backend` at run time. Asking for
``'cuda'`` when the extension has no CUDA kernels is an error (raised by
:func:`set_cuda_backend`, or at the first CUDA call for the environment
variable), naming the build command. When Triton is missing, the CUDA C++
kernels serve if built, else the pure-PyTorch reference (with a warning).
This module registers the CUDA kernel of ``mmpkkd::adder2d`` and
``mmpkkd::adder2d_backward`` that follows the choice.
"""
import os
from typing import Tuple

import torch

from ._library import _LIB, NATIVE, EXT
from .adder2d_triton import triton_available

__all__ = ['CUDA_BACKENDS', 'get_cuda_backend', 'set_cuda_backend',
           'cuda_backends_available']

CUDA_BACKENDS = ('triton', 'cuda')
ENV_VAR = 'MMPKKD_CUDA_BACKEND'

_CPP_CUDA = NATIVE and EXT.with_cuda()


def cuda_backends_available() -> Tuple[str, ...]:
    """The GPU backends this installation can run, in preference order."""
    found = []
    if triton_available():
        found.append('triton')
    if _CPP_CUDA:
        found.append('cuda')
    return tuple(found)


def _check(name: str) -> str:
    if name not in CUDA_BACKENDS:
        raise ValueError(f'unknown adder2d CUDA backend {name!r}: choose one '
                         f'of {CUDA_BACKENDS} (env {ENV_VAR} or '
                         'mmpkkd.ops.set_cuda_backend)')
    return name


_requested = _check(os.environ.get(ENV_VAR, 'triton').strip().lower())


def set_cuda_backend(name: str) -> None:
    """Select the kernels adder2d runs on CUDA tensors.

    Args:
        name: ``'triton'`` or ``'cuda'`` (the CUDA C++ kernels).

    Raises:
        ValueError: for another name, or a backend this installation
            lacks (the message says how to get it).
    """
    global _requested
    _check(name)
    if name not in cuda_backends_available():
        raise ValueError(_unavailable(name))
    _requested = name


def _unavailable(name: str) -> str:
    hint = ('install triton (it comes with CUDA builds of torch)'
            if name == 'triton' else
            'mmpkkd._ext was built without its CUDA C++ kernels (they are '
            'opt-in); rebuild with a CUDA toolkit visible: '
            '`MMPKKD_WITH_CUDA=1 pip install --no-build-isolation -e .`')
    return f'adder2d CUDA backend {name!r} is not available here; {hint}'


def get_cuda_backend() -> str:
    """The backend adder2d uses on CUDA tensors ('triton' or 'cuda'), or
    'reference' when neither is available.

    Raises:
        ValueError: if ``'cuda'`` was asked for (``MMPKKD_CUDA_BACKEND``)
            and the extension has no CUDA kernels.
    """
    available = cuda_backends_available()
    if _requested in available:
        return _requested
    if _requested == 'cuda':
        raise ValueError(_unavailable('cuda') + f' (or unset {ENV_VAR})')
    return available[0] if available else 'reference'


def _cuda_forward(input, weight, bias, stride, padding, dilation, groups):
    if get_cuda_backend() == 'cuda':
        op = torch.ops.mmpkkd.adder2d_cuda
    else:
        op = torch.ops.mmpkkd.adder2d_triton
    return op(input, weight, bias, stride, padding, dilation, groups)


def _cuda_backward(grad_output, input, weight, stride, padding, dilation,
                   groups, output_mask):
    if get_cuda_backend() == 'cuda':
        op = torch.ops.mmpkkd.adder2d_cuda_backward
    else:
        op = torch.ops.mmpkkd.adder2d_triton_backward
    return op(grad_output, input, weight, stride, padding, dilation, groups,
              output_mask)


if cuda_backends_available():
    _LIB.impl('adder2d', _cuda_forward, 'CUDA')
    _LIB.impl('adder2d_backward', _cuda_backward, 'CUDA')
