"""MMEngine's ``CheckpointHook`` with crash-safe writes and order.

MMEngine's hook writes each file straight to its final name, removes the
oldest checkpoint (``max_keep_ckpts``) before writing the new one, and
removes the previous best checkpoint before writing the new best. A run
killed at the wrong moment is left with a truncated checkpoint, a
``last_checkpoint`` that points to a deleted file, or no best checkpoint.

:class:`AtomicCheckpointHook` keeps its options and file names and changes
only the writing:

1. every file (checkpoint, ``last_checkpoint``) is written by
   :func:`~.saving.atomic_write`: temporary file in the same folder,
   ``fsync``, rename;
2. ``last_checkpoint`` is updated only after the checkpoint it names is
   complete on disk;
3. the checkpoint that ``max_keep_ckpts`` drops, and the previous best, are
   removed only after the new one is complete.

A kill at any moment therefore leaves ``last_checkpoint`` pointing to a
complete checkpoint, and, once a best checkpoint was written, at least one
complete best checkpoint (two for a moment: a kill between writing a new
best and removing the old one leaves both). Temporary files left by a kill
are removed when the next run starts.
"""
import os
import os.path as osp
from typing import Any, List, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook

from mmpkkd.registry import HOOKS
from .saving import BACKEND_NAME, TMP_SUFFIX, atomic_write

LAST_CHECKPOINT = 'last_checkpoint'


class _LaterRemovals:
    """A file backend whose ``remove``/``rmtree`` are only recorded, so
    that they can be done after the new checkpoint is written."""

    def __init__(self, backend: Any):
        self._backend = backend
        self.paths: List[str] = []

    def remove(self, path: str) -> None:
        self.paths.append(path)

    rmtree = remove

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` whose files are complete whenever the run stops.

    Takes every argument of :class:`mmengine.hooks.CheckpointHook`. Without
    ``backend_args`` and with a local ``out_dir`` it writes through
    :class:`~.saving.AtomicLocalBackend`; other storage (``backend_args``
    given, ``s3://`` ...) is written as MMEngine writes it.

    Example:
        >>> default_hooks = dict(checkpoint=dict(
        ...     type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3,
        ...     save_best='auto'))
    """

    def before_train(self, runner) -> None:
        out_dir = self.out_dir or runner.work_dir
        local = '://' not in str(out_dir)
        if (local and self.file_client_args is None
                and not self.backend_args):
            self.backend_args = dict(backend=BACKEND_NAME)
        super().before_train(runner)
        if local and is_main_process():
            self._remove_temporary_files(runner)

    def _remove_temporary_files(self, runner) -> None:
        """Remove the temporary files a killed run left behind."""
        for folder in {self.out_dir, runner.work_dir}:
            if not osp.isdir(folder):
                continue
            for name in os.listdir(folder):
                if name.endswith('.pth' + TMP_SUFFIX) or name == (
                        LAST_CHECKPOINT + TMP_SUFFIX):
                    os.remove(osp.join(folder, name))
                    runner.logger.info(
                        f'Removed {name}, left by an interrupted save.')

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        """Save, then point ``last_checkpoint`` at it, then drop the
        checkpoint beyond ``max_keep_ckpts`` (MMEngine drops it first)."""
        dropped: Optional[int] = None
        if self.max_keep_ckpts > 0 and not (
                self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                dropped = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))

        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        atomic_write(str(self.last_ckpt),
                     osp.join(runner.work_dir, LAST_CHECKPOINT))
        if dropped is not None and dropped != step:
            path = self.file_backend.join_path(
                self.out_dir, self.filename_tmpl.format(dropped))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):
                self.file_backend.rmtree(path)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        """MMEngine's best-checkpoint logic, with the previous best removed
        only after the new one is written."""
        backend = self.file_backend
        later = _LaterRemovals(backend)
        self.file_backend = later
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            self.file_backend = backend
        keep = {str(self.best_ckpt_path)} if getattr(
            self, 'best_ckpt_path', None) else set()
        keep |= {
            str(p)
            for p in getattr(self, 'best_ckpt_path_dict', {}).values() if p
        }
        for path in later.paths:
            if str(path) in keep:
                continue  # a best of the same name was just rewritten
            if backend.isfile(path):
                backend.remove(path)
            elif backend.isdir(path):
                backend.rmtree(path)
