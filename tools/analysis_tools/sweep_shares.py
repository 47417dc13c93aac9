"""Per setting of a PKKD sweep: accuracy and each student loss term's
gradient share (at initialisation and over training).

Reads ``OUT/runs.csv`` and each finished run's ``scalars.json`` (training
logs ``student.grad_share.<term>``, see configs/pkkd/README.md) and prints
a Markdown table: the val top-1, the teacher's, and the mean over seeds of
each term's share of the student's gradient.

Example::

    python tools/analysis_tools/sweep_shares.py \\
        work_dirs/sweeps/pkkd_fashionmnist_kernel_scan
"""
import argparse
import csv
import os.path as osp
from typing import Dict, List

from mmpkkd.experiments.shares import summarize_shares
from mmpkkd.experiments.stats import mean_std
from mmpkkd.utils import USAGE_EXIT, UserError, add_debug_arg, run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir', help='the --out-dir of a sweep')
    add_debug_arg(parser)
    return parser.parse_args(argv)


def _pm(values: List[float], scale: float = 1.0, digits: int = 2) -> str:
    mean, std = mean_std(values)
    if mean is None:
        return '–'
    text = f'{scale * mean:.{digits}f}'
    return text if std is None else f'{text} ± {scale * std:.{digits}f}'


def table(out_dir: str) -> str:
    """The Markdown table of a sweep folder."""
    path = osp.join(out_dir, 'runs.csv')
    if not osp.isfile(path):
        raise UserError(
            f'{path} does not exist; give the --out-dir of a sweep '
            '(tools/analysis_tools/sweep.py writes runs.csv there).', USAGE_EXIT)
    settings: Dict[str, List[dict]] = {}
    with open(path, newline='') as f:
        for row in csv.DictReader(f):
            if row['status'] == 'done':
                settings.setdefault(row['setting'], []).append(row)
    lines = [
        '| setting | n | val top-1 (%) | teacher (%) | share mid, init (%) '
        '| share mid, training (%) | share kd, training (%) |',
        '|---|---|---|---|---|---|---|'
    ]
    for name, runs in settings.items():
        # the recorded work dir (relative to where the sweep ran), else the
        # sweep's layout OUT/<setting>/seed_<seed>
        dirs = [r['work_dir'] if osp.isdir(r['work_dir']) else osp.join(
            out_dir, name, f'seed_{r["seed"]}') for r in runs]
        shares = summarize_shares(dirs)

        def share(phase: str, term: str) -> str:
            mean, std = shares.get(phase, {}).get(term, (None, None))
            if mean is None:
                return '–'
            return f'{100 * mean:.1f}' + (
                '' if std is None else f' ± {100 * std:.1f}')

        teachers = [float(r['teacher']) for r in runs if r['teacher']]
        lines.append(
            f'| {name} | {len(runs)} | '
            f'{_pm([float(r["val"]) for r in runs])} | {_pm(teachers)} | '
            f'{share("init", "mid")} | {share("train", "mid")} | '
            f'{share("train", "kd")} |')
    return '\n'.join(lines) + '\n'


def report(args: argparse.Namespace) -> str:
    """Print the table of ``args.out_dir`` and return it."""
    text = table(args.out_dir)
    print(text, end='')
    return text


def main(argv=None) -> str:
    """Run the tool; errors propagate (for use from Python)."""
    return report(parse_args(argv))


if __name__ == '__main__':
    run_tool(report, parse_args(), 'sweep_shares.py')
