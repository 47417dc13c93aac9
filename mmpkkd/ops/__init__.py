"""The AdderNet adder2d op: ``torch.ops.mmpkkd.adder2d`` and its reference.

Importing this package loads the native extension (when built) and
registers the dispatcher ops, their fake kernels and autograd formula
(:mod:`mmpkkd.ops._library`).
"""
from .adder2d import Adder2dFallbackWarning, adder2d, native_available
from .adder2d_triton import adder2d_triton
from .cuda_backend import (cuda_backends_available, get_cuda_backend,
                           set_cuda_backend)
from .int8 import adder2d_int8, adder2d_int8_affine  # noqa: F401
from .reference import adder2d_reference
from .unfold_reference import adder2d_unfold_original

__all__ = [
    'adder2d', 'adder2d_reference', 'adder2d_triton',
    'adder2d_unfold_original', 'native_available', 'Adder2dFallbackWarning',
    'get_cuda_backend', 'set_cuda_backend', 'cuda_backends_available'
]
