"""Checkpoint loading that keeps torch's safe (weights-only) unpickler.

MMEngine 0.10.7 calls ``torch.load`` without ``weights_only``. Since torch
2.6 that means ``weights_only=True``, which rejects the
:class:`~mmengine.logging.HistoryBuffer` and numpy arrays that MMEngine
itself writes into every checkpoint's ``message_hub``, so ``--resume`` fails.
Turning ``weights_only`` off would let any checkpoint run arbitrary code.

Instead, :func:`safe_torch_load` allow-lists exactly the classes MMEngine
stores (see :data:`ALLOWED_GLOBALS`) for the duration of one load, and
:func:`register_safe_checkpoint_loader` installs it as MMEngine's loader
for local paths, so ``runner.resume``, ``load_from`` and ``tools/test.py``
all go through it. A checkpoint that asks for any other global is refused
before anything in it runs.
"""
import os.path as osp
import pickle
import zipfile
from typing import Any, Callable, List, Optional, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be loaded (unsafe, corrupt or absent)."""


def _numpy_globals() -> List[Any]:
    """The numpy callables/classes needed to rebuild arrays and scalars."""
    try:  # numpy >= 2 moved ``core`` to ``_core``; pickles name either.
        from numpy._core import multiarray as _multiarray
    except ImportError:  # pragma: no cover - numpy < 2
        from numpy.core import multiarray as _multiarray
    dtype_classes = [type(np.dtype(t)) for t in (
        np.float16, np.float32, np.float64, np.int8, np.int16, np.int32,
        np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.bool_)]
    return [_multiarray._reconstruct, _multiarray.scalar, np.ndarray,
            np.dtype] + dtype_classes


# Statistics methods every HistoryBuffer refers to (plus registered ones).
_HISTORY_BUFFER_METHODS = {'min', 'max', 'current', 'mean'}


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """Stand-in for ``getattr`` limited to what a HistoryBuffer pickles.

    A pickled :class:`HistoryBuffer` refers to its statistics methods as
    ``getattr(HistoryBuffer, 'mean')``. Allowing the real ``getattr`` would
    let a file reach any attribute of any allowed class, so only those
    lookups are served.
    """
    allowed = _HISTORY_BUFFER_METHODS | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'Unsupported global: getattr({obj!r}, {name!r}) is not allowed')


#: Every global a checkpoint written by MMEngine's runner may reference
#: beyond torch's own defaults: the log history buffers of the message hub
#: (with their statistics methods) and the numpy arrays/scalars inside them.
ALLOWED_GLOBALS: List[Any] = [HistoryBuffer] + _numpy_globals() + [
    (_history_buffer_getattr, 'builtins.getattr')
]


def _unsafe_globals(filename: Any) -> List[str]:
    """Globals a zip checkpoint references beyond the allow-list (no load)."""
    if not isinstance(filename, str):
        return []
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
    except Exception:  # noqa: BLE001 - not a zip checkpoint
        return []
    allowed = {
        g[1] if isinstance(g, tuple) else f'{g.__module__}.{g.__qualname__}'
        for g in ALLOWED_GLOBALS
    }
    return sorted(set(names) - allowed)


def safe_torch_load(filename: Union[str, Any],
                    map_location: Optional[Union[str, Callable]] = None
                    ) -> Any:
    """Load a checkpoint with the weights-only unpickler plus MMEngine's types.

    Args:
        filename (str | file-like): Path (or open binary file) of the
            checkpoint.
        map_location (str | callable, optional): As in :func:`torch.load`.

    Returns:
        Any: The unpickled object, usually a dict with ``state_dict``,
        ``meta``, ``message_hub``, ``optimizer`` ...

    Raises:
        CheckpointError: The file does not exist, is truncated or corrupt,
            or references a Python global that is not allow-listed (a pickle
            payload). Nothing from the file is executed in that case.

    Example:
        >>> ckpt = safe_torch_load('work_dirs/resnet20/epoch_1.pth', 'cpu')
        >>> sorted(ckpt)[:3]
        ['message_hub', 'meta', 'optimizer']
    """
    name = filename if isinstance(filename, str) else getattr(
        filename, 'name', repr(filename))
    if isinstance(filename, str) and not osp.isfile(filename):
        raise CheckpointError(
            f'Checkpoint {name!r} does not exist. Check the path passed to '
            '--resume / load_from / tools/test.py.')
    try:
        with torch.serialization.safe_globals(ALLOWED_GLOBALS):
            return torch.load(filename, map_location=map_location,
                              weights_only=True)
    except pickle.UnpicklingError as err:
        unsafe = _unsafe_globals(filename)
        if unsafe or 'global' in str(err).lower():
            detail = f' It references {unsafe}.' if unsafe else ''
            raise CheckpointError(
                f'Refused to load checkpoint {name!r}: it contains Python '
                f'objects outside the allow-list of safe types.{detail} '
                'Loading it could execute arbitrary code, so nothing was '
                'executed. Re-save the weights from a trusted source with '
                '`torch.save(model.state_dict(), path)`.') from None
        raise CheckpointError(
            f'Checkpoint {name!r} is corrupt: it is not a torch checkpoint '
            'that can be unpickled. Re-download it or resume from an earlier '
            'epoch_*.pth.') from err
    except (EOFError, OSError, zipfile.BadZipFile, RuntimeError,
            ValueError) as err:
        raise CheckpointError(
            f'Checkpoint {name!r} is truncated or corrupt: {err}. The file '
            'was probably cut short while being written or copied; use an '
            'earlier epoch_*.pth or copy it again.') from err


def _load_from_local(filename: str, map_location=None) -> Any:
    return safe_torch_load(osp.expanduser(filename), map_location)


def register_safe_checkpoint_loader() -> None:
    """Make MMEngine's loader for local paths use :func:`safe_torch_load`."""
    CheckpointLoader.register_scheme(prefixes='', force=True)(
        _load_from_local)
