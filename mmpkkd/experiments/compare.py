"""Paired comparison of methods trained over the same seeds: a table per
method, and each method's per-seed differences to the first (the
baseline) with a Student-t confidence interval."""
import statistics
from typing import Dict, List, Optional, Sequence, Tuple

from .stats import PairedDifference, mean_std, paired_difference


def _fmt(value: Optional[float], spec: str = '.2f') -> str:
    return '-' if value is None else format(value, spec)


def paired_by_seed(base: Dict[int, dict], other: Dict[int, dict]
                   ) -> Tuple[List[int], PairedDifference]:
    """The seeds both methods have, and ``other - base`` of their ``val``
    on those seeds (see
    :func:`~mmpkkd.experiments.stats.paired_difference`).

    Args:
        base (dict): ``{seed: row}`` of the baseline (rows of
            ``runs.csv``, see
            :func:`~mmpkkd.experiments.tables.read_finished_runs`).
        other (dict): ``{seed: row}`` of the other method.
    """
    seeds = sorted(set(base) & set(other))
    return seeds, paired_difference([float(base[s]['val']) for s in seeds],
                                    [float(other[s]['val']) for s in seeds])


def report(methods: Sequence[Tuple[str, Dict[int, dict]]]) -> str:
    """Two Markdown tables: each method's accuracy over its seeds, and each
    method's paired per-seed differences to the first method.

    Args:
        methods (Sequence[tuple]): ``(name, {seed: row})``; the first is
            the baseline.

    Returns:
        str: The tables.
    """
    lines = ['| method | n | top-1 (%) mean ± std | per seed | teacher (%) '
             '| wall-clock (min) |', '|---|---|---|---|---|---|']
    for name, runs in methods:
        seeds = sorted(runs)
        vals = [float(runs[s]['val']) for s in seeds]
        mean, std = mean_std(vals)
        teach = [float(runs[s]['teacher']) for s in seeds
                 if runs[s].get('teacher')]
        wall = [float(runs[s]['wall_min']) for s in seeds]
        lines.append(
            f'| {name} | {len(vals)} | {mean:.2f} ± {_fmt(std)} | '
            + ', '.join(f'{v:.2f}' for v in vals) + ' | '
            + (f'{statistics.fmean(teach):.2f} ± '
               f'{_fmt(mean_std(teach)[1])}' if teach else '-')
            + f' | {statistics.fmean(wall):.1f} |')
    base_name, base = methods[0]
    lines += ['', f'Paired per-seed differences to {base_name} (95 % '
              'confidence interval, Student t):', '',
              '| method | n | mean difference (points) | 95 % CI | better / '
              'worse seeds | per seed |', '|---|---|---|---|---|---|']
    for name, runs in methods[1:]:
        _, p = paired_by_seed(base, runs)
        per_seed = ', '.join(f'{d:+.2f}' for d in p.diffs)
        if p.n < 2:
            lines.append(f'| {name} - {base_name} | {p.n} | - | - | - | '
                         f'{per_seed} |')
            continue
        lines.append(
            f'| {name} - {base_name} | {p.n} | {p.mean:+.2f} ± '
            f'{p.std:.2f} | [{p.low:+.2f}, {p.high:+.2f}] | '
            f'{p.wins} / {p.losses} | {per_seed} |')
    return '\n'.join(lines) + '\n'
