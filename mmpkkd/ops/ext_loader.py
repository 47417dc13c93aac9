"""The compiled extension ``mmpkkd._ext``, imported once with mmpkkd.ops.

Importing it registers the native kernels of ``torch.ops.mmpkkd.adder2d``
(see ``csrc/register_ops.cpp``). It is imported here, at import time, and
never inside the op's call path, so ``torch.compile`` traces the op without
a graph break. ``EXT`` is None when the extension is not built (or was built
for another torch); :mod:`mmpkkd.ops._library` then registers the
pure-PyTorch kernels instead.
"""
from types import ModuleType
from typing import Optional

BUILD_HINT = ('build it with `pip install --no-build-isolation -e .` in the '
              'repository root (needs a C++ compiler; CUDA kernels are added '
              'when a CUDA toolkit is found)')

EXT: Optional[ModuleType]
LOAD_ERROR: Optional[str]
try:
    from mmpkkd import _ext as EXT
    LOAD_ERROR = None
except ImportError as err:  # not built, or built for another torch
    EXT, LOAD_ERROR = None, f'{type(err).__name__}: {err}'


def load_ext() -> Optional[ModuleType]:
    """Return the compiled ``mmpkkd._ext`` module, or None if unavailable."""
    return EXT


def load_error() -> Optional[str]:
    """Why the extension could not be imported (None if it was)."""
    return LOAD_ERROR
