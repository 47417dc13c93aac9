"""Writing a checkpoint so that a crash never leaves half a file.

MMEngine's ``LocalBackend`` writes a checkpoint straight to its final name:
a process killed during the write (OOM killer, preemption, a second
Ctrl-C) or a full disk leaves a truncated ``epoch_N.pth`` that ``--resume``
then fails on. :func:`atomic_write` writes to a temporary file in the same
folder, flushes it to the disk (``fsync``) and only then renames it over
the final name (a rename within one file system is atomic), and syncs the
folder so that the rename itself survives a power cut. A reader sees the
old file or the complete new one, never a mix.

:class:`AtomicLocalBackend` is MMEngine's local file backend with its
``put`` and ``put_text`` written that way; :class:`.AtomicCheckpointHook`
saves through it.
"""
import os
import os.path as osp
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend

from mmpkkd.utils.errors import USAGE_EXIT
from .loading import CheckpointError

#: Suffix of the temporary file a checkpoint is written to first. It does
#: not end with ``.pth``, so a left-over one is never taken for a
#: checkpoint.
TMP_SUFFIX = '.tmp'
#: Name of :class:`AtomicLocalBackend` in MMEngine's file backends.
BACKEND_NAME = 'atomic_local'


def _write(f, data: bytes) -> None:
    """``f.write(data)`` (a separate function: tests make it fail)."""
    f.write(data)


def _fsync_dir(folder: str) -> None:
    """Make a rename in ``folder`` durable (no-op where folders cannot be
    opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(data: Union[bytes, str], path: Union[str, Path]) -> None:
    """Write ``data`` to ``path``: all of it, or nothing changes.

    Args:
        data (bytes | str): The content (str is written as UTF-8).
        path (str | Path): The final file; its folder is created if needed.

    Raises:
        CheckpointError: The write failed (disk full, no permission ...).
            The temporary file is removed and ``path`` is as it was.

    Example:
        >>> atomic_write(b'weights', 'work_dirs/run/epoch_1.pth')
        >>> open('work_dirs/run/epoch_1.pth', 'rb').read()
        b'weights'
    """
    path = os.fspath(path)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode('utf-8')
    tmp = path + TMP_SUFFIX
    try:
        with open(tmp, 'wb') as f:
            _write(f, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        try:
            os.remove(tmp)
        except OSError:
            pass
        kept = ('the previous file is unchanged' if osp.exists(path) else
                'no file was written')
        error = CheckpointError(
            f'Could not write {path}: {err.strerror or err} ({kept}). Free '
            'disk space or fix the folder, then continue the run with '
            '--resume.')
        error.exit_code = USAGE_EXIT  # the disk must be fixed, then resume
        raise error from err
    _fsync_dir(folder)


@register_backend(BACKEND_NAME, force=True)  # a re-import replaces it
class AtomicLocalBackend(LocalBackend):
    """MMEngine's local file backend whose writes are atomic
    (:func:`atomic_write`).

    Select it with ``backend_args=dict(backend='atomic_local')``;
    :class:`.AtomicCheckpointHook` does so for local work dirs.
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        atomic_write(obj.encode(encoding), filepath)
