"""A run's result, read from its own logs, and the summary of a sweep's
finished runs: one row per setting."""
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mmpkkd.visualization.curves import find_scalar_files, read_scalars
from .spec import DEFAULT_NAME, Setting, format_options
from .stats import mean_std


def val_scalars(work_dir: str) -> Dict[str, Dict[int, float]]:
    """Validation scalars of a work dir, ``{key: {step: value}}``.

    Every attempt of a run writes ``<work_dir>/<timestamp>/vis_data/
    scalars.json``, read here with
    :func:`mmpkkd.visualization.curves.read_scalars` (a last line cut off by
    a crash is dropped). Validation lines carry ``step`` and no ``loss``.
    Attempts are read oldest first, so a later one overrides the steps it
    repeats.

    Returns:
        dict: Empty when the run has written no log yet.

    Raises:
        ValueError: A line other than the last of a log is not JSON.
    """
    try:
        paths = find_scalar_files(work_dir)
    except FileNotFoundError:
        return {}
    merged: Dict[str, Dict[int, float]] = {}
    for path in paths:
        for rec in read_scalars(path)['val']:
            if 'loss' in rec or 'step' not in rec:
                continue
            for key, value in rec.items():
                if isinstance(value, (int, float)) and key != 'step':
                    merged.setdefault(key, {})[rec['step']] = value
    return merged


def final_metrics(work_dir: str, step: int, metric: str
                  ) -> Optional[Dict[str, Optional[float]]]:
    """The run's validation metric (and the teacher's, if logged) at the
    final step, or None when the logs have not got there.

    Args:
        work_dir (str): The run's work dir.
        step (int): The final epoch (or iteration).
        metric (str): E.g. ``accuracy/top1``; the teacher's is
            ``teacher/<metric>``.

    Returns:
        dict, optional: ``{'val': ..., 'teacher': ... or None, 'step':
        step}``.
    """
    scalars = val_scalars(work_dir)
    if step not in scalars.get(metric, {}):
        return None
    teacher = scalars.get(f'teacher/{metric}', {})
    return dict(val=float(scalars[metric][step]),
                teacher=float(teacher[step]) if step in teacher else None,
                step=step)


def summarize(settings: Sequence[Setting],
              records: Dict[Tuple[str, int], dict]) -> List[Dict[str, Any]]:
    """One row per setting from the finished runs' records.

    Args:
        settings (Sequence[Setting]): The rows, in order.
        records (dict): ``{(setting name, seed): record}`` (see
            :mod:`mmpkkd.experiments.records`); only ``done`` ones count.

    Returns:
        list[dict]: Per setting: the metric's mean, std and n
        (``val_mean``, ``val_std``, ``n``), the teacher's where logged
        (``teacher_*``), the mean wall-clock minutes per run
        (``wall_min_mean``), and the mean and std of the per-seed difference
        to the default setting over the seeds both have (``diff_*``; None
        for the default itself). Statistics follow
        :func:`~mmpkkd.experiments.stats.mean_std`.
    """
    done: Dict[str, Dict[int, dict]] = {}
    for (name, seed), record in records.items():
        if record.get('status') == 'done' and record.get('result'):
            done.setdefault(name, {})[seed] = record
    default = done.get(DEFAULT_NAME, {})
    rows = []
    for setting in settings:
        runs = done.get(setting.name, {})
        seeds = sorted(runs)
        vals = [runs[s]['result']['val'] for s in seeds]
        teachers = [runs[s]['result']['teacher'] for s in seeds
                    if runs[s]['result'].get('teacher') is not None]
        walls = [sum(a['elapsed_s'] for a in runs[s]['attempts']) / 60
                 for s in seeds]
        row = dict(setting=setting.name, n=len(vals))
        row['val_mean'], row['val_std'] = mean_std(vals)
        row['teacher_mean'], row['teacher_std'] = mean_std(teachers)
        row['teacher_n'] = len(teachers)
        row['wall_min_mean'] = mean_std(walls)[0]
        diffs = [runs[s]['result']['val'] - default[s]['result']['val']
                 for s in seeds if s in default]
        if setting.name != DEFAULT_NAME and diffs:
            row['diff_mean'], row['diff_std'] = mean_std(diffs)
            row['diff_n'] = len(diffs)
        else:
            row['diff_mean'] = row['diff_std'] = row['diff_n'] = None
        row['seeds'] = ' '.join(map(str, seeds))
        row['options'] = format_options(setting.options)
        rows.append(row)
    return rows
