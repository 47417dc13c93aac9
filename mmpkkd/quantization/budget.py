"""A memory budget for building a model from a config read from a file.

A config can ask for any layer size (``num_classes=10**12``); building it
would try to allocate that much before anything could compare it with the
weights in the file. :class:`AllocationBudget` counts the bytes of every
tensor the torch factory functions create while it is active and raises
*before* the allocation that would exceed the budget.
"""
import math
from typing import Any, Optional, Sequence

import torch
from torch.overrides import TorchFunctionMode


class AllocationError(MemoryError):
    """A build asked for more memory than its budget."""


def _numel(size: Any) -> Optional[int]:
    """Element count of a size given as ints, a sequence or torch.Size."""
    if len(size) == 1 and isinstance(size[0], (list, tuple, torch.Size)):
        size = size[0]
    if not all(isinstance(s, int) for s in size):
        return None
    return math.prod(size) if all(s >= 0 for s in size) else 0


def _size_args(args: Sequence, kwargs: dict) -> Optional[int]:
    if 'size' in kwargs:
        return _numel((kwargs['size'], ))
    return _numel(tuple(args)) if args else None


def _first_arg(args: Sequence, kwargs: dict) -> Optional[int]:
    size = args[0] if args else kwargs.get('size')
    return None if size is None else _numel((size, ))


def _arange(args: Sequence, kwargs: dict) -> Optional[int]:
    values = [a for a in args if isinstance(a, (int, float))]
    if len(values) == 1:
        start, end, step = 0, values[0], 1
    elif len(values) >= 2:
        start, end = values[:2]
        step = values[2] if len(values) > 2 else kwargs.get('step', 1)
    else:
        return None
    return max(0, math.ceil((end - start) / step)) if step else None


def _steps(args: Sequence, kwargs: dict) -> Optional[int]:
    steps = args[2] if len(args) > 2 else kwargs.get('steps')
    return steps if isinstance(steps, int) else None


def _eye(args: Sequence, kwargs: dict) -> Optional[int]:
    n = args[0] if args else kwargs.get('n')
    m = args[1] if len(args) > 1 and isinstance(args[1], int) else \
        kwargs.get('m', n)
    return n * m if isinstance(n, int) and isinstance(m, int) else None


#: factory function -> its element count from (args, kwargs)
_COUNTERS = {
    torch.empty: _size_args,
    torch.zeros: _size_args,
    torch.ones: _size_args,
    torch.rand: _size_args,
    torch.randn: _size_args,
    torch.full: _first_arg,
    torch.empty_strided: _first_arg,
    torch.arange: _arange,
    torch.linspace: _steps,
    torch.logspace: _steps,
    torch.eye: _eye,
}


class AllocationBudget(TorchFunctionMode):
    """Refuse factory allocations beyond ``max_bytes`` in total.

    Args:
        max_bytes (int): The budget.
        what (str): What is being built, for the message.

    Example:
        >>> with AllocationBudget(1 << 20, 'a layer'):
        ...     torch.nn.Linear(10**6, 10**6)
        Traceback (most recent call last):
        AllocationError: building a layer would allocate ...
    """

    def __init__(self, max_bytes: int, what: str = 'the model'):
        super().__init__()
        self.max_bytes = int(max_bytes)
        self.used = 0
        self.what = what

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        counter = _COUNTERS.get(func)
        if counter is not None:
            numel = counter(args, kwargs)
            if numel is not None:
                dtype = kwargs.get('dtype') or torch.get_default_dtype()
                itemsize = getattr(dtype, 'itemsize', 8)
                self.used += numel * itemsize
                if self.used > self.max_bytes:
                    raise AllocationError(
                        f'building {self.what} would allocate more than '
                        f'{self.max_bytes / 2**20:.0f} MiB ({func.__name__} '
                        f'of {numel} elements); its config asks for layers '
                        'far larger than the weights stored with it.')
        return func(*args, **kwargs)
