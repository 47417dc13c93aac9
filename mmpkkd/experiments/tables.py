"""The sweep's tables: ``results.csv`` and ``results.md`` (one row per
setting) and ``runs.csv`` (one row per run), and reading the finished runs
of ``runs.csv`` back (for comparing sweeps)."""
import csv
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mmpkkd.utils import USAGE_EXIT, UserError
from mmpkkd.utils.config import missing_file_message
from .plan import Run
from .records import now

#: The columns of ``results.csv`` (the rows of
#: :func:`~mmpkkd.experiments.results.summarize`).
TABLE_COLUMNS = ('setting', 'n', 'val_mean', 'val_std', 'teacher_mean',
                 'teacher_std', 'teacher_n', 'diff_mean', 'diff_std',
                 'diff_n', 'wall_min_mean', 'seeds', 'options')
#: The columns of ``runs.csv``.
RUN_COLUMNS = ('setting', 'seed', 'status', 'val', 'teacher', 'wall_min',
               'attempts', 'work_dir')


def _cell(value: Any, digits: int) -> str:
    if value is None:
        return ''
    if isinstance(value, float):
        return f'{value:.{digits}f}'
    return str(value)


def _pm(mean: Optional[float], std: Optional[float], signed=False) -> str:
    """``mean ± std``; the mean alone when the std is undefined."""
    if mean is None:
        return '–'
    text = f'{mean:+.2f}' if signed else f'{mean:.2f}'
    return text + (f' ± {std:.2f}' if std is not None else '')


def write_tables(out_dir: str, rows: List[Dict[str, Any]],
                 runs: List[Run], records: Dict[Tuple[str, int], dict],
                 header: Dict[str, Any]) -> None:
    """Write ``results.csv``, ``results.md`` and ``runs.csv`` to
    ``out_dir``.

    Args:
        out_dir (str): The sweep's folder.
        rows (list[dict]): From
            :func:`~mmpkkd.experiments.results.summarize`.
        runs (list[Run]): Every run of the sweep, in order.
        records (dict): ``{(setting name, seed): record}``.
        header (dict): ``config``, ``metric``, ``seeds``, ``unit``
            (``'epoch'`` or ``'iteration'``) and ``options`` (text) of the
            sweep, for the text above the table.
    """
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, 'results.csv'), 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(TABLE_COLUMNS)
        for row in rows:
            writer.writerow([_cell(row[c], 4) for c in TABLE_COLUMNS])
    with open(osp.join(out_dir, 'runs.csv'), 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(RUN_COLUMNS)
        for run in runs:
            record = records.get((run.setting.name, run.seed)) or {}
            result = record.get('result') or {}
            wall = sum(a['elapsed_s'] for a in record.get('attempts', []))
            writer.writerow([
                run.setting.name, run.seed, record.get('status', 'new'),
                _cell(result.get('val'), 4), _cell(result.get('teacher'), 4),
                _cell(wall / 60 if record.get('attempts') else None, 2),
                len(record.get('attempts', [])), run.work_dir
            ])
    metric = header['metric']
    teacher = any(row['teacher_n'] for row in rows)
    lines = [
        f'# Sweep of `{header["config"]}`', '',
        f'Validation `{metric}` (%) after the last {header["unit"]} of '
        'each run, mean ± sample std over n seeds'
        + (' (the PKKD student; the co-trained teacher beside it)'
           if teacher else '') + '. '
        'Δ default: the mean ± std over seeds of the per-seed difference '
        'to the default setting. Wall-clock: minutes per run, with the '
        'threads and parallel runs of the sitting that trained it.', '',
        f'Seeds: {" ".join(map(str, header["seeds"]))}. Options of every '
        f'run: {header["options"] or "none"}. Written {now()}.', ''
    ]
    head = ['setting', 'n', f'{metric} (%)']
    head += ['teacher (%)'] if teacher else []
    head += ['Δ default', 'wall-clock (min)', 'options']
    lines += ['| ' + ' | '.join(head) + ' |',
              '|' + '---|' * len(head)]
    for row in rows:
        cells = [row['setting'], str(row['n']),
                 _pm(row['val_mean'], row['val_std'])]
        if teacher:
            cells.append(_pm(row['teacher_mean'], row['teacher_std']))
        cells += [_pm(row['diff_mean'], row['diff_std'], signed=True),
                  _cell(row['wall_min_mean'], 1) or '–',
                  f'`{row["options"]}`' if row['options'] else '']
        lines.append('| ' + ' | '.join(cells) + ' |')
    with open(osp.join(out_dir, 'results.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')


def read_finished_runs(name: str, folders: Sequence[str],
                       setting: str = 'default') -> Dict[int, dict]:
    """The finished runs of one setting in the ``runs.csv`` of one or more
    sweep folders (runs of one method trained in separate sweeps).

    Args:
        name (str): The method's name, for messages.
        folders (Sequence[str]): Sweep folders (``--out-dir`` of a sweep).
        setting (str): The setting's name.

    Returns:
        dict: ``{seed: row}``, a row of ``runs.csv`` as text
        (:data:`RUN_COLUMNS`).

    Raises:
        UserError: A folder has no ``runs.csv`` (exit status 2); a seed
            appears twice or no run is finished (1).
    """
    runs: Dict[int, dict] = {}
    for folder in folders:
        path = osp.join(folder, 'runs.csv')
        if not osp.isfile(path):
            raise UserError(
                f'{missing_file_message(path, "sweep results")} (write it '
                'with tools/analysis_tools/sweep.py --out-dir DIR).', USAGE_EXIT)
        with open(path, newline='') as f:
            for r in csv.DictReader(f):
                if r['setting'] != setting or r['status'] != 'done':
                    continue
                seed = int(r['seed'])
                if seed in runs:
                    raise UserError(
                        f'{name}: seed {seed} appears twice '
                        f'({",".join(folders)}); name each folder once.')
                runs[seed] = r
    if not runs:
        raise UserError(f'no finished run of setting {setting!r} in '
                        f'{",".join(folders)}; check the setting name '
                        '(DIR:SETTING).')
    return runs
