"""Protecting the checkpoints of a work dir when a training starts.

MMEngine writes ``epoch_N.pth``, ``iter_N.pth``, ``best_*.pth`` and
``last_checkpoint`` straight into the work dir, so a second run there
replaces the first one's files. :func:`plan_run` decides, before anything
is built, whether a training may start:

* a new run into a work dir that holds checkpoints is refused, unless the
  user asked to resume it or to overwrite it (``--overwrite`` deletes the
  old checkpoints first, so that the two runs' files do not mix);
* ``--resume`` without a path resumes from the work dir's
  ``last_checkpoint``; when there is none, it says so and stops instead of
  starting from scratch;
* ``--resume PATH`` needs ``PATH`` to exist.
"""
import os
import os.path as osp
from typing import List, Optional

from mmpkkd.utils import INPUT_EXIT, USAGE_EXIT, UserError

LAST_CHECKPOINT = 'last_checkpoint'
#: What to do about a work dir that holds checkpoints (tools/train.py).
RUN_ADVICE = ('Resume that run with --resume, train into another '
              '--work-dir, or pass --overwrite to delete them and start '
              'again.')


def checkpoint_files(work_dir: str) -> List[str]:
    """The checkpoint files (``*.pth``, ``last_checkpoint``) directly in
    ``work_dir``, sorted; [] when it does not exist."""
    if not osp.isdir(work_dir):
        return []
    return sorted(
        name for name in os.listdir(work_dir)
        if (name.endswith('.pth') or name == LAST_CHECKPOINT)
        and osp.isfile(osp.join(work_dir, name)))


def latest_checkpoint(work_dir: str) -> str:
    """The checkpoint ``work_dir/last_checkpoint`` points to.

    Raises:
        UserError: There is no ``last_checkpoint`` or its file is gone.
    """
    pointer = osp.join(work_dir, LAST_CHECKPOINT)
    if not osp.isfile(pointer):
        saved = [n for n in checkpoint_files(work_dir) if n.endswith('.pth')]
        hint = (f' It holds {", ".join(saved)}: pass one with --resume '
                'PATH.' if saved else ' Start a new run without --resume.')
        raise UserError(
            f'--resume: nothing to resume in {work_dir}: no run has saved '
            f'a checkpoint there (no {LAST_CHECKPOINT} file).{hint}',
            USAGE_EXIT)
    with open(pointer) as f:
        path = f.read().strip()
    if not osp.isabs(path) and not osp.isfile(path):
        path = osp.join(work_dir, osp.basename(path))
    if not osp.isfile(path):
        raise UserError(
            f'--resume: {pointer} points to {path}, which does not exist. '
            'Pass an existing checkpoint with --resume PATH.', INPUT_EXIT)
    return path


def plan_run(work_dir: str, resume: Optional[str] = None,
             overwrite: bool = False,
             load_from: Optional[str] = None,
             advice: str = RUN_ADVICE) -> Optional[str]:
    """Check that a training may start in ``work_dir``.

    Args:
        work_dir (str): The run's work dir.
        resume (str, optional): None for a new run, ``'auto'`` to resume
            from the work dir's latest checkpoint, else a checkpoint path.
        overwrite (bool): Start a new run even if ``work_dir`` holds
            checkpoints; they are deleted first (rank 0 only).
        load_from (str, optional): The config's ``load_from``; never
            deleted.
        advice (str): What the refusal of a new run suggests doing.

    Returns:
        str or None: The checkpoint to resume from, None for a new run.

    Raises:
        UserError: See the module docstring.
    """
    if resume is not None and overwrite:
        raise UserError('--resume and --overwrite contradict each other: '
                        'resume the run, or overwrite it.', USAGE_EXIT)
    if resume == 'auto':
        return latest_checkpoint(work_dir)
    if resume is not None:
        if '://' in resume:
            # a remote checkpoint: MMEngine's loader for its scheme reads it
            # (weights-only, see mmpkkd.engine.checkpoint.schemes)
            return resume
        if not osp.isfile(resume):
            raise UserError(f'--resume {resume}: no such checkpoint file.',
                            USAGE_EXIT)
        return resume
    old = checkpoint_files(work_dir)
    if not old:
        return None
    if not overwrite:
        shown = ', '.join(old[:6]) + (', ...' if len(old) > 6 else '')
        raise UserError(
            f'work dir {work_dir} holds the checkpoints of an earlier run '
            f'({shown}); a new run would replace them. {advice}',
            USAGE_EXIT)
    if load_from is not None and any(
            osp.realpath(osp.join(work_dir, n)) == osp.realpath(load_from)
            for n in old):
        raise UserError(
            f'--overwrite would delete load_from={load_from}; copy it out of '
            f'{work_dir} first or train into another --work-dir.',
            USAGE_EXIT)
    if int(os.environ.get('RANK', '0')) == 0:
        for name in old:
            os.remove(osp.join(work_dir, name))
    return None
