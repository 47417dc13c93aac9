"""Paired comparison of methods trained over the same seeds.

Each method is a sweep folder written by ``tools/analysis_tools/sweep.py`` (its
``runs.csv``), or several separated by commas (runs of one method trained in
separate sweeps, e.g. side by side), and optionally one setting of it
(``DIR[,DIR...]:SETTING``, default ``default``). The first method is the
baseline. For every other method the tool pairs the runs by seed (the same
seed gives the same data order, augmentation and initialisation of the
shared parts) and reports the mean per-seed difference to the baseline with
a two-sided 95 % confidence interval from Student's t distribution (n - 1
degrees of freedom), and the number of seeds where the method was better.
The tables come from :mod:`mmpkkd.experiments.compare`.

Example::

    python tools/analysis_tools/compare_sweeps.py \\
        ann=work_dirs/fashion_final/ann \\
        pkkd=work_dirs/fashion_final/pkkd_default \\
        cnn=work_dirs/fashion_final/cnn --markdown cmp.md
"""
import argparse
from typing import Dict, Tuple


def read_runs(spec: str) -> Tuple[str, Dict[int, dict]]:
    """(name, {seed: row}) of the finished runs of
    ``NAME=DIR[,DIR...][:SETTING]``.

    Raises:
        UserError: ``spec`` is malformed or a folder has no ``runs.csv``
            (exit status 2); a seed appears twice or no run is finished
            (1).
    """
    from mmpkkd.experiments import read_finished_runs
    from mmpkkd.utils import USAGE_EXIT, UserError
    if '=' not in spec:
        raise UserError(f'expected NAME=DIR[,DIR...][:SETTING], got '
                        f'{spec!r}; e.g. ann=work_dirs/sweeps/ann.',
                        USAGE_EXIT)
    name, rest = spec.split('=', 1)
    folders, _, setting = rest.partition(':')
    return name, read_finished_runs(name, folders.split(','),
                                    setting or 'default')


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
    from mmpkkd.experiments import report
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
    cli_args = parse_args()  # --help ends here, before torch
    from mmpkkd.utils import run_tool  # noqa: E402
    run_tool(compare, cli_args, 'compare_sweeps.py')
