"""Train a config over settings of ``--cfg-options`` and seeds; tabulate the
validation accuracy per setting (mean, std, n).

Each run is a plain ``tools/train.py`` process with its own work dir,
``OUT/<setting>/seed_<seed>``. The sweep can be stopped at any time (Ctrl-C,
``kill``, a reboot) and started again with the same command: finished runs
are read, not redone; a run that was interrupted resumes from its last
checkpoint (``tools/train.py --resume``); a run that failed is tried again.
After every run ``OUT/results.csv`` and ``OUT/results.md`` (one row per
setting) and ``OUT/runs.csv`` (one row per run) are rewritten.

The settings come from a spec file (YAML or JSON) and/or the command line:

* ``one_at_a_time`` / ``--one-at-a-time KEY=V1,V2``: the config's own
  values (the ``default`` row) and, for each factor, each value with all
  other factors at the default. A value equal to the config's is the
  default row, not a second run of it.
* ``grid`` / ``--grid KEY=V1,V2``: every combination of the factors.
* ``settings`` / ``--setting KEY=V [KEY=V ...]``: explicit settings.
* ``options`` / ``--options KEY=V ...``: applied to every run (a proxy
  budget, the validation split).
* ``seeds`` / ``--seeds``: each setting is trained once per seed
  (``randomness.seed``).

A factor's value may also be a mapping of several keys set together (and
an optional ``name``), e.g. both kernels' ``sigma``. Spec example (YAML)::

    seeds: [0, 1, 2]
    options:                      # the proxy budget, for every run
      train_dataloader.dataset.dataset.indices: 10000
      train_cfg.max_epochs: 5
      param_scheduler.T_max: 5
    one_at_a_time:
      model.teacher.head.type: [LinearClsHead, BNLinearClsHead]
      model.loss_blend.alpha: [0.1, 0.5, 1]
      sigma:
        - {model.student_kernel.sigma: auto, model.teacher_kernel.sigma: auto}
        - {name: sigma=fixed, model.student_kernel.sigma: 50.0,
           model.teacher_kernel.sigma: 5.0}
    settings:
      - {model.loss_blend.alpha: 0.5, model.loss_mid.loss_weight: 1}

Runs go one at a time (seed by seed: every setting's first seed before any
second seed); ``--jobs N`` runs N at once and ``--threads T`` sets
``OMP_NUM_THREADS`` (and ``MKL_NUM_THREADS``) of every run. Each run's
wall-clock time is in the tables; each sitting's total time in
``OUT/sessions.jsonl``.

This file is the command line of :mod:`mmpkkd.experiments`, which plans,
trains, records and tabulates the sweep.

Example:
    python tools/analysis_tools/sweep.py \\
        configs/pkkd/pkkd_resnet20_1xb128-15e_fashionmnist.py \\
        --spec configs/sweeps/pkkd_fashionmnist_oat.yaml \\
        --out-dir work_dirs/sweeps/pkkd_fm --threads 2
    # the same command again after an interruption continues the sweep
    python tools/analysis_tools/sweep.py \\
        configs/cnn/cnn_resnet20_1xb64-15e_digits.py \\
        --one-at-a-time optim_wrapper.optimizer.lr=0.05,0.2 --seeds 0 1 2 \\
        --out-dir work_dirs/sweeps/cnn_lr --dry-run
"""
import argparse
import os
import os.path as osp
import sys
from typing import Any, Dict, Optional

from mmengine.config import DictAction  # light: no torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN_TOOL = osp.join(REPO, 'tools', 'train.py')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train a config over settings of --cfg-options and '
        'seeds, one tools/train.py run per setting and seed, and write a '
        'table of the validation accuracy per setting. Run the same command '
        'again to continue an interrupted sweep.',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Values: KEY=V1,V2 lists the values of one factor; a value '
        'that is itself a list goes in a spec file.')
    parser.add_argument('config', help='training config')
    parser.add_argument(
        '--out-dir',
        help='folder of the sweep: one work dir per run, the tables '
        '(default: work_dirs/sweeps/<config name>)')
    parser.add_argument('--spec', help='YAML or JSON file with seeds, '
                        'options, one_at_a_time, grid and settings')
    parser.add_argument(
        '--one-at-a-time', nargs='+', action=DictAction, default={},
        metavar='KEY=V1,V2',
        help='factors varied one at a time around the config\'s values')
    parser.add_argument(
        '--grid', nargs='+', action=DictAction, default={},
        metavar='KEY=V1,V2', help='factors varied in every combination')
    parser.add_argument(
        '--setting', nargs='+', action='append', default=[],
        metavar='KEY=V', help='one explicit setting (repeat the option for '
        'more)')
    parser.add_argument(
        '--options', nargs='+', action=DictAction, default={},
        metavar='KEY=V', help='--cfg-options of every run (e.g. a proxy '
        'budget); override the spec\'s')
    parser.add_argument('--seeds', nargs='+', type=int,
                        help='seeds of every setting (default: the spec\'s, '
                        'else 0)')
    parser.add_argument(
        '--metric', help='validation metric to tabulate (default: '
        'accuracy/top1; a PKKD teacher\'s is teacher/<metric>)')
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs trained at the same time (default: 1)')
    parser.add_argument(
        '--threads', type=int,
        help='OMP_NUM_THREADS and MKL_NUM_THREADS of every run (default: '
        'inherited)')
    parser.add_argument(
        '--max-runs', type=int,
        help='start at most this many runs in this sitting, then stop')
    parser.add_argument(
        '--dry-run', action='store_true',
        help='list the runs and their state and write the tables from the '
        'finished runs; train nothing')
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of an error')
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error('--jobs must be at least 1')
    if args.threads is not None and args.threads < 1:
        parser.error('--threads must be at least 1')
    if args.max_runs is not None and args.max_runs < 0:
        parser.error('--max-runs must not be negative')
    return args


def load_spec(args: argparse.Namespace) -> Dict[str, Any]:
    """The spec file (if any) merged with the command line (see
    :func:`mmpkkd.experiments.read_spec`)."""
    from mmpkkd.experiments import read_spec
    return read_spec(args.spec, options=args.options,
                     one_at_a_time=args.one_at_a_time, grid=args.grid,
                     settings=args.setting, seeds=args.seeds,
                     metric=args.metric)


def child_env(threads: Optional[int]) -> Dict[str, str]:
    """The environment of a run: this repository importable (first on
    ``PYTHONPATH``), and the thread count when ``--threads`` is given.

    Example:
        >>> child_env(1)['OMP_NUM_THREADS']
        '1'
    """
    env = dict(os.environ)
    paths = [REPO] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep)
                      if p]
    env['PYTHONPATH'] = os.pathsep.join(paths)
    if threads is not None:
        env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(threads)
    return env


def sweep(args: argparse.Namespace) -> int:
    """Run the sweep of ``args`` (see
    :func:`mmpkkd.experiments.run_sweep`); return the exit status (0:
    every run finished; 1: some failed; 130: interrupted)."""
    from mmpkkd.experiments import run_sweep
    from mmpkkd.utils import USAGE_EXIT, UserError
    from mmpkkd.utils.config import missing_file_message
    if not osp.isfile(args.config):
        raise UserError(missing_file_message(args.config, 'config'),
                        USAGE_EXIT)
    out_dir = args.out_dir or osp.join(
        'work_dirs', 'sweeps', osp.splitext(osp.basename(args.config))[0])
    return run_sweep(args.config, load_spec(args), out_dir,
                     train_tool=TRAIN_TOOL, env=child_env(args.threads),
                     jobs=args.jobs, threads=args.threads,
                     max_runs=args.max_runs, dry_run=args.dry_run)


def main(argv=None) -> int:
    """Run the tool; errors propagate (for use from Python)."""
    args = parse_args(argv)
    import mmpkkd  # noqa: F401  (registers all modules; after --help)
    return sweep(args)


if __name__ == '__main__':
    cli_args = parse_args()  # --help ends here, before torch
    from mmpkkd.utils import run_tool  # noqa: E402
    sys.exit(run_tool(sweep, cli_args, 'sweep.py'))
