"""The record of each run in its work dir (:data:`RUN_FILE`): its options,
its attempts and its result, and how an unfinished run continues.

A record is a JSON mapping::

    {"config": ..., "setting": ..., "seed": 0, "options": {...},
     "config_hash": ..., "status": "new" | "running" | "done" | "failed"
     | "interrupted", "attempts": [{"started": ..., "elapsed_s": 12.5,
     "returncode": 0, "pid": 123, "args": [], "threads": 1, "jobs": 1}],
     "result": {"val": 91.0, "teacher": null, "step": 15} or null}
"""
import datetime
import json
import os
import os.path as osp
from typing import Any, List, Optional

from mmengine.runner import find_latest_checkpoint

from mmpkkd.runtime import LAST_CHECKPOINT, checkpoint_files
from mmpkkd.utils import USAGE_EXIT, UserError
from .plan import Run

#: The file in each run's work dir that records the run for the sweep.
RUN_FILE = 'sweep_run.json'
#: The training output of each run (all attempts, appended).
LOG_FILE = 'sweep_train.log'


def now() -> str:
    """The local time to the second, ISO format."""
    return datetime.datetime.now().isoformat(timespec='seconds')


def write_json(path: str, data: Any) -> None:
    """Write ``data`` as JSON atomically (a crash leaves the old file)."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def read_record(work_dir: str) -> Optional[dict]:
    """The record in ``work_dir``, or None when there is none (or it was
    cut off by a crash while being written)."""
    path = osp.join(work_dir, RUN_FILE)
    if not osp.isfile(path):
        return None
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError:
            return None


def new_record(run: Run, config: str) -> dict:
    """The record of a run not trained yet."""
    return dict(config=config, setting=run.setting.name, seed=run.seed,
                options=run.options, config_hash=run.config_hash,
                status='new', attempts=[], result=None)


def check_record(run: Run, record: dict) -> None:
    """Refuse a work dir that holds a run of other options or config.

    Raises:
        UserError: The record's options or config hash differ from the
            run's.
    """
    if record.get('options') != run.options:
        raise UserError(
            f'{run.work_dir} holds a run with other options '
            f'({record.get("options")}) than this sweep gives it '
            f'({run.options}). Sweep into another --out-dir, or delete that '
            'folder to train it again.', USAGE_EXIT)
    if record.get('config_hash') != run.config_hash:
        raise UserError(
            f'{run.work_dir} holds a run of a different config: the config '
            'or its base files changed since. Sweep into another '
            '--out-dir, or delete that folder to train it again.',
            USAGE_EXIT)


def checkpoint_step(path: str) -> Optional[int]:
    """N of ``epoch_N.pth`` / ``iter_N.pth``, else None.

    Example:
        >>> checkpoint_step('work_dirs/r20/epoch_3.pth')
        3
        >>> checkpoint_step('work_dirs/r20/best.pth') is None
        True
    """
    name = osp.basename(path)
    for prefix in ('epoch_', 'iter_'):
        if name.startswith(prefix) and name.endswith('.pth'):
            number = name[len(prefix):-4]
            if number.isdigit():
                return int(number)
    return None


def resume_args(run: Run) -> List[str]:
    """``tools/train.py`` arguments that continue the run.

    Returns:
        list[str]: [] for a new run; ``--resume`` from the checkpoint that
        :func:`mmengine.runner.find_latest_checkpoint` names, or from the
        newest earlier one when that is the final step's (its validation
        never ran; training is exact across resumes); ``--overwrite`` when
        the work dir holds checkpoints but none to resume from.
    """
    saved = checkpoint_files(run.work_dir)
    if not saved:
        return []
    last = None
    if LAST_CHECKPOINT in saved:
        pointer = find_latest_checkpoint(run.work_dir)
        # the pointer holds the path at save time: the run's folder may
        # have moved since, so look for the file in the folder itself
        last = osp.join(run.work_dir, osp.basename(pointer or ''))
    if last and osp.isfile(last) and checkpoint_step(last) != \
            run.final_step:
        return ['--resume', last]
    earlier = sorted(
        ((checkpoint_step(n), n) for n in saved
         if checkpoint_step(n) is not None
         and checkpoint_step(n) < run.final_step),
        reverse=True)
    if earlier:
        return ['--resume', osp.join(run.work_dir, earlier[0][1])]
    return ['--overwrite']
