"""Reading a checkpoint file with torch's safe (weights-only) unpickler.

MMEngine 0.10.7 calls ``torch.load`` without ``weights_only``. Since torch
2.6 that means ``weights_only=True``, which rejects the
:class:`~mmengine.logging.HistoryBuffer` and numpy arrays that MMEngine
itself writes into every checkpoint's ``message_hub``, so ``--resume`` fails.
Turning ``weights_only`` off would let any checkpoint run arbitrary code.

Instead, :func:`safe_torch_load` allow-lists exactly the classes MMEngine
stores (see :data:`ALLOWED_GLOBALS`) for the duration of one load. A
checkpoint that asks for any other global is refused before anything in it
runs. :mod:`.schemes` routes every checkpoint name MMEngine accepts (local
path, URL, ``torchvision://`` ...) to it.

Tensors are mapped to the CPU unless the caller asks otherwise, so a
checkpoint saved on a GPU loads on a machine without one (or with fewer
GPUs), and the caller moves the weights where the model is.
"""
import os.path as osp
import pickle
import zipfile
from typing import IO, Any, Callable, List, Optional, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

#: Where tensors go when the caller gives no ``map_location``.
DEFAULT_MAP_LOCATION = 'cpu'


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


def safe_torch_load(filename: Union[str, IO[bytes]],
                    map_location: Optional[Union[str, Callable,
                                                 torch.device]] = None
                    ) -> Any:
    """Load a checkpoint with the weights-only unpickler plus MMEngine's types.

    Args:
        filename (str | file-like): Path (or open binary file) of the
            checkpoint.
        map_location (str | callable | torch.device, optional): As in
            :func:`torch.load`. None (default) maps every tensor to the CPU,
            whatever device it was saved from.

    Returns:
        Any: The unpickled object, usually a dict with ``state_dict``,
        ``meta``, ``message_hub``, ``optimizer`` ...

    Raises:
        CheckpointError: The file does not exist, is truncated or corrupt,
            references a Python global that is not allow-listed (a pickle
            payload), or asks for a device this machine lacks. Nothing from
            the file is executed in that case.

    Example:
        >>> ckpt = safe_torch_load('work_dirs/resnet20/epoch_1.pth')
        >>> sorted(ckpt)[:3]
        ['message_hub', 'meta', 'optimizer']
        >>> ckpt['state_dict']['head.fc.weight'].device
        device(type='cpu')
    """
    name = filename if isinstance(filename, str) else getattr(
        filename, 'name', repr(filename))
    if isinstance(filename, str) and not osp.isfile(filename):
        raise CheckpointError(
            f'Checkpoint {name!r} does not exist. Check the path passed to '
            '--resume / load_from / tools/test.py.')
    if map_location is None:
        map_location = DEFAULT_MAP_LOCATION
    try:
        with torch.serialization.safe_globals(ALLOWED_GLOBALS):
            return torch.load(filename, map_location=map_location,
                              weights_only=True)
    except (FileNotFoundError, PermissionError):
        raise  # reported as they are: the path or its rights are wrong
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
    except RuntimeError as err:
        text = str(err).lower()
        if 'cuda' in text or 'device' in text:
            raise CheckpointError(
                f'Checkpoint {name!r} cannot be mapped to {map_location!r} '
                f'on this machine: {str(err).splitlines()[0]} Load it with '
                "map_location='cpu' (the default) and move the model "
                'afterwards.') from err
        raise _corrupt(name, err) from err
    except (EOFError, OSError, zipfile.BadZipFile, ValueError) as err:
        raise _corrupt(name, err) from err


def _corrupt(name: str, err: BaseException) -> CheckpointError:
    detail = getattr(err, 'strerror', None) or err
    return CheckpointError(
        f'Checkpoint {name!r} is truncated or corrupt: {detail}. The file '
        'was probably cut short while being written or copied; use an '
        'earlier epoch_*.pth or copy it again.')
