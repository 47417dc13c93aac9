"""Paired comparison of methods trained over the same seeds.

Each method is a sweep folder written by ``tools/analysis/sweep.py`` (its
``runs.csv``), or several separated by commas (runs of one method trained in
separate sweeps, e.g. side by side), and optionally one setting of it
(``DIR[,DIR...]:SETTING``, default ``default``). The first method is the baseline. For every other method the
tool pairs the runs by seed (the same seed gives the same data order,
augmentation and initialisation of the shared parts) and reports the mean
per-seed difference to the baseline with a two-sided 95 % confidence
interval from Student's t distribution (n - 1 degrees of freedom), and the
number of seeds where the method was better.

Example::

    python tools/analysis/compare_sweeps.py \\
        ann=work_dirs/fashion_final/ann \\
        pkkd=work_dirs/fashion_final/pkkd_default \\
        cnn=work_dirs/fashion_final/cnn --markdown cmp.md
"""
import argparse
import csv
import math
import os.path as osp
import statistics
from typing import Dict, List, Optional, Tuple


def t_quantile_975(dof: int) -> float:
    """The 0.975 quantile of Student's t with ``dof`` degrees of freedom."""
    from scipy.stats import t
    return float(t.ppf(0.975, dof))


def read_runs(spec: str) -> Tuple[str, Dict[int, dict]]:
    """(name, {seed: row}) of the finished runs of
    ``NAME=DIR[,DIR...][:SETTING]``.

    Raises:
        UserError: ``spec`` is malformed or a folder has no ``runs.csv``
            (exit status 2); a seed appears twice or no run is finished
            (1).
    """
    from mmpkkd.utils import USAGE_EXIT, UserError
    from mmpkkd.utils.config import missing_file_message
    if '=' not in spec:
        raise UserError(f'expected NAME=DIR[,DIR...][:SETTING], got '
                        f'{spec!r}; e.g. ann=work_dirs/sweeps/ann.',
                        USAGE_EXIT)
    name, rest = spec.split('=', 1)
    folders, _, setting = rest.partition(':')
    setting = setting or 'default'
    runs: Dict[int, dict] = {}
    for folder in folders.split(','):
        path = osp.join(folder, 'runs.csv')
        if not osp.isfile(path):
            raise UserError(
                f'{missing_file_message(path, "sweep results")} (write it '
                'with tools/analysis/sweep.py --out-dir DIR).', USAGE_EXIT)
        with open(path, newline='') as f:
            for r in csv.DictReader(f):
                if r['setting'] != setting or r['status'] != 'done':
                    continue
                seed = int(r['seed'])
                if seed in runs:
                    raise UserError(f'{name}: seed {seed} appears twice '
                                    f'({folders}); name each folder once.')
                runs[seed] = r
    if not runs:
        raise UserError(f'no finished run of setting {setting!r} in '
                        f'{folders}; check the setting name (DIR:SETTING).')
    return name, runs


def mean_std(values: List[float]) -> Tuple[float, Optional[float]]:
    return (statistics.fmean(values),
            statistics.stdev(values) if len(values) > 1 else None)


def paired(base: Dict[int, dict], other: Dict[int, dict]) -> dict:
    seeds = sorted(set(base) & set(other))
    diffs = [float(other[s]['val']) - float(base[s]['val']) for s in seeds]
    out = dict(n=len(seeds), seeds=seeds, diffs=diffs)
    if len(diffs) >= 2:
        mean, std = mean_std(diffs)
        half = t_quantile_975(len(diffs) - 1) * std / math.sqrt(len(diffs))
        out.update(mean=mean, std=std, lo=mean - half, hi=mean + half,
                   wins=sum(d > 0 for d in diffs),
                   losses=sum(d < 0 for d in diffs))
    return out


def fmt(v: Optional[float], spec: str = '.2f') -> str:
    return '-' if v is None else format(v, spec)


def report(methods: List[Tuple[str, Dict[int, dict]]]) -> str:
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
            f'| {name} | {len(vals)} | {mean:.2f} ± {fmt(std)} | '
            + ', '.join(f'{v:.2f}' for v in vals) + ' | '
            + (f'{statistics.fmean(teach):.2f} ± '
               f'{fmt(mean_std(teach)[1])}' if teach else '-')
            + f' | {statistics.fmean(wall):.1f} |')
    base_name, base = methods[0]
    lines += ['', f'Paired per-seed differences to {base_name} (95 % '
              'confidence interval, Student t):', '',
              '| method | n | mean difference (points) | 95 % CI | better / '
              'worse seeds | per seed |', '|---|---|---|---|---|---|']
    for name, runs in methods[1:]:
        p = paired(base, runs)
        if p['n'] < 2:
            lines.append(f'| {name} - {base_name} | {p["n"]} | - | - | - | '
                         + ', '.join(f'{d:+.2f}' for d in p['diffs']) + ' |')
            continue
        lines.append(
            f'| {name} - {base_name} | {p["n"]} | {p["mean"]:+.2f} ± '
            f'{p["std"]:.2f} | [{p["lo"]:+.2f}, {p["hi"]:+.2f}] | '
            f'{p["wins"]} / {p["losses"]} | '
            + ', '.join(f'{d:+.2f}' for d in p['diffs']) + ' |')
    return '\n'.join(lines) + '\n'


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('methods', nargs='+',
                        help='NAME=SWEEP_DIR[:SETTING]; the first is the '
                        'baseline')
    parser.add_argument('--markdown', help='also write the tables here')
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of an error')
    args = parser.parse_args(argv)
    if len(args.methods) < 2:
        parser.error('give at least two methods (the first is the baseline)')
    return args


def compare(args: argparse.Namespace) -> str:
    """Read the methods of ``args``, print and optionally write the
    tables."""
    from mmpkkd.utils import check_output_path, make_parent
    if args.markdown:
        check_output_path(args.markdown, option='--markdown')
    text = report([read_runs(m) for m in args.methods])
    print(text)
    if args.markdown:
        with open(make_parent(args.markdown), 'w') as f:
            f.write(text)
    return text


def main(argv=None) -> str:
    """Run the tool; errors propagate (for use from Python)."""
    return compare(parse_args(argv))


if __name__ == '__main__':
    cli_args = parse_args()
    from mmpkkd.utils import report_errors  # after --help: keeps it quick
    with report_errors('compare_sweeps.py', cli_args.debug or None):
        compare(cli_args)
