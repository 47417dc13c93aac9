"""Which CPU kernel set (instruction set) each native CPU op runs.

``mmpkkd._ext`` compiles every CPU kernel for several instruction sets and
picks the best one the CPU supports at run time: ``'avx512'`` (AVX-512F;
AVX-512BW for the int8 op), ``'avx2'`` (AVX2, with FMA for the float op)
or the portable ``'generic'`` C++. Each op keeps its own choice:

* ``'adder2d'`` -- the float op :func:`mmpkkd.ops.adder2d`;
* ``'adder2d_int8'`` -- :func:`mmpkkd.ops.int8.adder2d_int8` and its fused
  affine form.

Both are switched the same way: at start-up by an environment variable
(:data:`ENV_VARS`; an unknown or unsupported value is ignored), at run time
by :func:`set_cpu_isa`, which calls the dispatcher op
``torch.ops.mmpkkd.<op>_cpu_isa`` (``csrc/register_ops.cpp``). Forcing a
kernel set is for testing and benchmarking: the results are the same.

Example:
    >>> cpu_isas_available('adder2d_int8')
    ('avx512', 'avx2', 'generic')
    >>> set_cpu_isa('avx2', op='adder2d_int8')
    'avx2'
    >>> get_cpu_isa('adder2d_int8'), get_cpu_isa('adder2d')
    ('avx2', 'avx512')
    >>> set_cpu_isa('auto', op='adder2d_int8')  # the best again
    'avx512'
"""
from typing import Tuple

import torch

from ._library import NATIVE, NATIVE_INT8
from .ext_loader import BUILD_HINT

__all__ = ['CPU_ISA_OPS', 'CPU_ISAS', 'get_cpu_isa', 'set_cpu_isa',
           'cpu_isas_available']

#: The ops with a CPU kernel-set switch.
CPU_ISA_OPS = ('adder2d', 'adder2d_int8')
#: Kernel sets, best first; ``'auto'`` selects the best supported one.
CPU_ISAS = ('avx512', 'avx2', 'generic')
#: Environment variable read once, when the op first runs, per op.
ENV_VARS = {
    'adder2d': 'MMPKKD_ADDER_CPU_ISA',
    'adder2d_int8': 'MMPKKD_INT8_CPU_ISA'
}
_BUILT = {'adder2d': NATIVE, 'adder2d_int8': NATIVE_INT8}


def _switch(op: str, suffix: str):
    """``torch.ops.mmpkkd.<op><suffix>``, checked to exist."""
    if op not in CPU_ISA_OPS:
        raise ValueError(f'unknown op {op!r}: the CPU kernel set is chosen '
                         f'per op, one of {CPU_ISA_OPS}')
    if not _BUILT[op]:
        raise RuntimeError(f'{op}: the native CPU kernels are not built, so '
                           f'there is no kernel set to choose; {BUILD_HINT}')
    return getattr(torch.ops.mmpkkd, op + suffix)


def get_cpu_isa(op: str = 'adder2d') -> str:
    """The kernel set ``op`` runs: ``'avx512'``, ``'avx2'`` or
    ``'generic'``.

    Raises:
        ValueError: ``op`` is not one of :data:`CPU_ISA_OPS`.
        RuntimeError: The native kernels are not built.
    """
    return _switch(op, '_cpu_isa')('')


def set_cpu_isa(name: str, op: str = 'adder2d') -> str:
    """Force the kernel set of ``op`` (``'auto'``: the best supported).

    Args:
        name (str): ``'auto'`` or one of :data:`CPU_ISAS`.
        op (str): One of :data:`CPU_ISA_OPS`.

    Returns:
        str: The kernel set now in use.

    Raises:
        ValueError: Unknown name, or a kernel set this CPU cannot run.
        RuntimeError: The native kernels are not built.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"CPU kernel set must be 'auto' or one of "
                         f'{CPU_ISAS}, got {name!r}')
    return _switch(op, '_cpu_isa')(name)


def cpu_isas_available(op: str = 'adder2d') -> Tuple[str, ...]:
    """The kernel sets of ``op`` this CPU can run, best first (always
    ending with ``'generic'``)."""
    return tuple(_switch(op, '_supported_cpu_isas')())
