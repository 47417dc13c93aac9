"""Import of the compiled extension ``mmpkkd._ext`` (None when not built)."""
import importlib
from types import ModuleType
from typing import Optional

_EXT: Optional[ModuleType] = None
_LOAD_ERROR: Optional[str] = None
_TRIED = False

BUILD_HINT = ('build it with `pip install --no-build-isolation -e .` in the '
              'repository root (needs a C++ compiler; CUDA kernels are added '
              'when a CUDA toolkit is found)')


def load_ext() -> Optional[ModuleType]:
    """Return the compiled ``mmpkkd._ext`` module, or None if unavailable."""
    global _EXT, _LOAD_ERROR, _TRIED
    if not _TRIED:
        _TRIED = True
        try:
            _EXT = importlib.import_module('mmpkkd._ext')
        except ImportError as err:  # not built, or built for another torch
            _EXT, _LOAD_ERROR = None, f'{type(err).__name__}: {err}'
    return _EXT


def load_error() -> Optional[str]:
    """Why the extension could not be imported (None if it was)."""
    load_ext()
    return _LOAD_ERROR
