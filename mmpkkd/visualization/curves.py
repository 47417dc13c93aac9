"""Read MMEngine ``scalars.json`` logs and plot accuracy and loss curves.

Every run of ``tools/train.py`` writes ``<work_dir>/<timestamp>/vis_data/
scalars.json``, one JSON object per line: training lines carry ``loss``
(and, for PKKD, ``teacher.loss_cls``, ``student.loss_cls``,
``student.loss_kd``, ``student.loss_mid``), ``lr``, ``epoch``, ``iter``
and ``step``; validation lines carry ``accuracy/top1`` (the student's, for
PKKD), ``teacher/accuracy/top1`` for PKKD, and ``step`` = epoch.

Runs of one work dir (a resumed training starts a new timestamp folder) are
merged in time order; a later run overrides the steps it repeats.
"""
import glob
import json
import os.path as osp
import tempfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from mmpretrain.utils import load_json_log

from .figure import FigureInfo, new_figure, save_figure

#: Keys of training lines that are bookkeeping, not loss terms.
_NOT_LOSSES = ('lr', 'data_time', 'time', 'epoch', 'iter', 'step',
               'memory', 'grad_norm')


@dataclass
class Curves:
    """Scalars of a training, by key, as sorted ``(x, value)`` points.

    Attributes:
        train (dict): Loss terms; x in epochs (fractional) for an
            epoch-based run, else iterations.
        val (dict): Validation metrics; x = ``step`` (the epoch for an
            epoch-based run).
        x_label (str): ``'epoch'`` or ``'iteration'``.
        runs (list[str]): The ``scalars.json`` files read.
    """
    train: Dict[str, List[Tuple[float, float]]] = field(default_factory=dict)
    val: Dict[str, List[Tuple[float, float]]] = field(default_factory=dict)
    x_label: str = 'epoch'
    runs: List[str] = field(default_factory=list)

    @property
    def is_distillation(self) -> bool:
        return any(k.startswith('teacher') for k in (*self.train,
                                                     *self.val))


def find_scalar_files(work_dir: str, latest_only: bool = False
                      ) -> List[str]:
    """``scalars.json`` files of the runs in ``work_dir``, oldest first.

    ``work_dir`` may also be one run's timestamp folder or the file itself.
    """
    if osp.isfile(work_dir):
        return [work_dir]
    folder = glob.escape(work_dir)  # a name may hold [ ] * ?
    patterns = [osp.join(folder, 'vis_data', 'scalars.json'),
                osp.join(folder, '*', 'vis_data', 'scalars.json')]
    files = sorted({f for p in patterns for f in glob.glob(p)},
                   key=lambda f: osp.basename(osp.dirname(osp.dirname(f))))
    if not files:
        raise FileNotFoundError(
            f'No scalars.json under {work_dir!r}; pass the --work-dir of a '
            'training (it holds <timestamp>/vis_data/scalars.json).')
    return files[-1:] if latest_only else files


def read_scalars(path: str) -> Dict[str, List[dict]]:
    """``train`` and ``val`` lines of one ``scalars.json``, as
    :func:`mmpretrain.utils.load_json_log` reads them, except that the last
    line may be cut off (a run killed while writing it): it is dropped.

    Example:
        >>> logs = read_scalars('work_dirs/r20/20240101_000000/vis_data/'
        ...                     'scalars.json')
        >>> logs['val'][0]
        {'accuracy/top1': 10.0, 'step': 1}
    """
    try:
        return load_json_log(path)
    except json.JSONDecodeError:
        pass
    with open(path) as f:
        lines = f.readlines()
    # load_json_log reads a path: give it the lines before the cut-off one
    with tempfile.TemporaryDirectory() as folder:
        complete = osp.join(folder, 'scalars.json')
        with open(complete, 'w') as f:
            f.writelines(lines[:-1])
        try:
            return load_json_log(complete)
        except json.JSONDecodeError as err:
            raise ValueError(
                f'{path}: line {err.lineno} is not JSON ({err.msg}); is this '
                'an MMEngine scalars.json?') from err


def _iters_per_epoch(train: List[dict]) -> Optional[float]:
    """Iterations per epoch from the last logged iteration of an epoch."""
    last: Dict[int, int] = {}
    for rec in train:
        last[rec['epoch']] = max(last.get(rec['epoch'], 0), rec['iter'])
    finished = sorted(last)[:-1] or sorted(last)
    epoch = finished[0]
    return last[epoch] / epoch if last[epoch] else None


def load_curves(work_dir: str, latest_only: bool = False) -> Curves:
    """Read and merge the runs of ``work_dir``.

    For an epoch-based run the training x is the fractional epoch
    ``iter / iterations_per_epoch`` (estimated from the last logged
    iteration of the first finished epoch), so it shares the axis of the
    per-epoch validation points.

    Example:
        >>> curves = load_curves('work_dirs/pkkd_digits')
        >>> sorted(curves.val)
        ['accuracy/top1', 'teacher/accuracy/top1']
        >>> curves.val['accuracy/top1'][0]  # (epoch, top-1 %)
        (1, 10.0)
    """
    curves = Curves()
    train_points: Dict[str, Dict[float, float]] = {}
    val_points: Dict[str, Dict[float, float]] = {}
    for path in find_scalar_files(work_dir, latest_only):
        curves.runs.append(path)
        logs = read_scalars(path)
        train = [r for r in logs['train'] if 'loss' in r]
        val = [r for r in logs['val'] if 'step' in r]
        by_epoch = bool(train) and all('epoch' in r and 'iter' in r
                                       for r in train)
        ipe = _iters_per_epoch(train) if by_epoch else None
        if train and ipe is None:
            curves.x_label = 'iteration'
        for rec in train:
            x = rec['iter'] / ipe if ipe else rec.get('iter', rec['step'])
            for key, value in rec.items():
                if key not in _NOT_LOSSES and isinstance(value, (int,
                                                                 float)):
                    train_points.setdefault(key, {})[x] = float(value)
        for rec in val:
            for key, value in rec.items():
                if key not in _NOT_LOSSES and isinstance(value, (int,
                                                                 float)):
                    val_points.setdefault(key, {})[rec['step']] = value
    curves.train = {k: sorted(v.items()) for k, v in train_points.items()}
    curves.val = {k: sorted(v.items()) for k, v in val_points.items()}
    if not curves.train and not curves.val:
        raise ValueError(f'{curves.runs} hold no training or validation '
                         'scalars.')
    return curves


def _label(key: str, distillation: bool) -> str:
    """``teacher.loss_cls`` -> ``teacher (CNN) loss_cls`` for PKKD runs."""
    if not distillation:
        return key
    for role, name in (('teacher', 'teacher (CNN)'),
                       ('student', 'student (ANN)')):
        for sep in ('.', '/'):
            if key.startswith(role + sep):
                return f'{name} {key[len(role) + 1:]}'
    if key.startswith('accuracy'):  # the main metric is the student's
        return f'student (ANN) {key}'
    return 'loss (total)' if key == 'loss' else key


def plot_curves(curves: Curves, path: str, title: str = '') -> FigureInfo:
    """Two panels: validation metrics and training loss terms vs epoch.

    Args:
        curves (Curves): From :func:`load_curves`.
        path (str): PNG file to write.
        title (str): Figure title.

    Returns:
        FigureInfo: ``num_panels == 2``.

    Example:
        >>> plot_curves(load_curves('work_dirs/pkkd'), 'curves.png').num_panels
        2
    """
    fig, (acc_ax, loss_ax) = new_figure(1, 2)
    distil = curves.is_distillation
    for key, points in curves.val.items():
        xs, ys = zip(*points)
        acc_ax.plot(xs, ys, marker='o', ms=3, label=_label(key, distil),
                    linestyle='--' if key.startswith('teacher') else '-')
    acc_ax.set_xlabel(curves.x_label)
    acc_ax.set_ylabel('validation metric (%)')
    acc_ax.set_title('validation')
    positive = True
    for key, points in curves.train.items():
        xs, ys = zip(*points)
        positive &= min(ys) > 0
        loss_ax.plot(xs, ys, lw=1, label=_label(key, distil),
                     linestyle='--' if key.startswith('teacher') else '-')
    if positive and curves.train:
        loss_ax.set_yscale('log')
    loss_ax.set_xlabel(curves.x_label)
    loss_ax.set_ylabel('training loss')
    loss_ax.set_title('training losses')
    for ax in (acc_ax, loss_ax):
        if ax.lines:
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path, panels=2)
