"""The AdderNet ops: ``torch.ops.mmpkkd.adder2d`` (float, trainable) and
``torch.ops.mmpkkd.adder2d_int8`` (int8 inference, CPU), with references.

Importing this package loads the native extension (when built) and
registers the dispatcher ops, their fake kernels and autograd formula
(:mod:`mmpkkd.ops._library`). The CPU kernel set of each op is chosen by
:mod:`mmpkkd.ops.cpu_isa`, the GPU backend of adder2d by
:mod:`mmpkkd.ops.cuda_backend`.
"""
from .adder2d import Adder2dFallbackWarning, adder2d, native_available
from .adder2d_triton import adder2d_triton
from .cpu_isa import (CPU_ISA_OPS, CPU_ISAS, cpu_isas_available,
                      get_cpu_isa, set_cpu_isa)
from .cuda_backend import (cuda_backends_available, get_cuda_backend,
                           set_cuda_backend)
from .int8 import adder2d_int8, adder2d_int8_affine  # noqa: F401
from .reference import adder2d_reference
from .unfold_reference import adder2d_unfold_original

__all__ = [
    'adder2d', 'adder2d_reference', 'adder2d_triton',
    'adder2d_unfold_original', 'native_available', 'Adder2dFallbackWarning',
    'get_cuda_backend', 'set_cuda_backend', 'cuda_backends_available',
    'CPU_ISA_OPS', 'CPU_ISAS', 'get_cpu_isa', 'set_cpu_isa',
    'cpu_isas_available'
]
