"""The main job: PKKD vs a plain ANN on the embedded digits data, 3 seeds.

For every seed, trains the adder ResNet-20 alone
(``configs/ann/ann_resnet20_1xb64-15e_digits.py``) and with PKKD
(``configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py``, which co-trains the CNN
teacher), with the same schedule, then evaluates the
final weights on the fixed test split (no checkpoint selection on it).
Prints a table of mean and standard deviation over the seeds and writes
``results.md``, ``results.json`` and ``results.png`` to the work dir.

The console shows one line per training (epoch, loss, the job's time
left, then the test accuracy) and the final table. Every training gets its
own folder under the work dir, holding MMEngine's full log (environment,
config, every logged iteration) in ``<timestamp>/<timestamp>.log``. When
one of the folders already holds checkpoints (an earlier demo), nothing
starts unless ``--overwrite`` is given.

Example:
    python tools/run_demo.py --work-dir work_dirs/demo --seeds 0 1 2
    # a quick look: one seed, one epoch on 256 training images
    python tools/run_demo.py --work-dir work_dirs/quick --seeds 0 \\
        --epochs 1 --train-images 256
"""
import argparse
import json
import os
import os.path as osp
import time
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
ANN_CONFIG = osp.join(REPO, 'configs/ann/ann_resnet20_1xb64-15e_digits.py')
PKKD_CONFIG = osp.join(REPO, 'configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py')
ROWS = [('CNN teacher (co-trained in PKKD)', 'cnn'),
        ('ANN trained alone', 'ann'), ('ANN trained with PKKD', 'pkkd')]
#: The trainings of one seed, in order, and their configs and labels.
KINDS = ('ann', 'pkkd')
CONFIGS = {'ann': ANN_CONFIG, 'pkkd': PKKD_CONFIG}
LABELS = {'ann': 'ANN', 'pkkd': 'PKKD'}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument(
        '--epochs', type=int, help='override the configs\' schedule length')
    parser.add_argument(
        '--train-images', type=int, metavar='N',
        help='train on the first N training images only (a quick check; '
        'the table then is not the configs\' result)')
    parser.add_argument(
        '--overwrite', action='store_true',
        help='delete the checkpoints of an earlier demo in the work dir '
        'and train again')
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of an error')
    return parser.parse_args(argv)


def run_dirs(work_dir: str, seeds: List[int]) -> Dict[tuple, str]:
    """``{(kind, seed): folder}`` of every training of the demo."""
    return {(kind, seed): osp.join(work_dir, f'{kind}_seed{seed}')
            for seed in seeds for kind in KINDS}


def demo_config(config: str, seed: int, work_dir: str,
                epochs: Optional[int] = None,
                train_images: Optional[int] = None):
    """The config of one training of the demo: validated once, at the end;
    checkpoints of the last epochs only (no best-checkpoint selection)."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.default_hooks.checkpoint.save_best = None
    if epochs is not None:
        cfg.train_cfg.max_epochs = epochs
        cfg.param_scheduler.T_max = epochs
    if train_images is not None:
        cfg.train_dataloader.dataset.indices = train_images
    cfg.train_cfg.val_interval = cfg.train_cfg.max_epochs
    return cfg


def train_and_test(cfg, progress=None) -> Dict[str, float]:
    """Train ``cfg`` and test its final weights; MMEngine's output goes to
    the run's log file, ``progress`` (a hook) shows it on the console."""
    from mmpkkd.runtime.progress import QuietToolRunner
    runner = QuietToolRunner.from_cfg(cfg)
    if progress is not None:
        runner.register_hook(progress)
    runner.train()
    return runner.test()


def mean_std(values: List[float]) -> tuple:
    """Mean and sample std over the seeds
    (:func:`mmpkkd.experiments.mean_std`). One seed has no std; it is
    shown as 0 here, an error bar of zero length."""
    from mmpkkd.experiments import mean_std as sample_mean_std
    mean, std = sample_mean_std(values)
    return mean, 0.0 if std is None else std


def summarise(values: List[float]) -> str:
    return '{:.2f} ± {:.2f}'.format(*mean_std(values))


def write_outputs(results: Dict[str, List[float]], seeds: List[int],
                  work_dir: str, minutes: float, budget: str = '') -> str:
    """Write the table (``results.md``), the numbers (``results.json``) and
    the bar chart (``results.png``) to ``work_dir``; return the table.
    ``budget`` names a schedule other than the configs' own."""
    header = ('| model | top-1 (%) mean ± std | per seed |\n'
              '|---|---|---|\n')
    rows = ''.join(
        f'| {label} | {summarise(results[key])} | '
        f"{', '.join(f'{v:.2f}' for v in results[key])} |\n"
        for label, key in ROWS)
    budget = f', {budget}' if budget else ''
    table = (f'Adder ResNet-20 on scikit-learn digits (450 test images)'
             f'{budget}, seeds {seeds}, {minutes:.1f} min on this '
             f'machine.\n\n'
             f'{header}{rows}')
    with open(osp.join(work_dir, 'results.md'), 'w') as f:
        f.write(table)
    with open(osp.join(work_dir, 'results.json'), 'w') as f:
        json.dump({'seeds': seeds, 'top1': results}, f, indent=2)
    plot(results, osp.join(work_dir, 'results.png'))
    return table


def plot(results: Dict[str, List[float]], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    labels = [label.split(' (')[0] for label, _ in ROWS]
    means, stds = zip(*(mean_std(results[k]) for _, k in ROWS))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(labels, means, yerr=stds, capsize=6,
           color=['#7f7f7f', '#1f77b4', '#d62728'])
    for i, (_, key) in enumerate(ROWS):
        ax.scatter([i] * len(results[key]), results[key], color='k', s=12,
                   zorder=3)
    low = min(min(v) for v in results.values())
    ax.set_ylim(max(0, low - 3), 100)
    ax.set_ylabel('test top-1 accuracy (%)')
    ax.set_title('Digits, ResNet-20: mean ± std over seeds')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def budget_note(args: argparse.Namespace) -> str:
    """What ``--epochs`` and ``--train-images`` changed, for the table."""
    parts = []
    if args.epochs is not None:
        parts.append(f'{args.epochs} epoch{"s" * (args.epochs != 1)}')
    if args.train_images is not None:
        parts.append(f'the first {args.train_images} training images')
    return ' on '.join(parts)


def run(args: argparse.Namespace) -> Dict[str, List[float]]:
    """Check every run folder first, then train and test them all."""
    from mmpkkd.runtime import plan_run
    from mmpkkd.utils import USAGE_EXIT, UserError
    if not args.seeds:
        raise UserError('--seeds needs at least one seed.', USAGE_EXIT)
    if args.epochs is not None and args.epochs < 1:
        raise UserError(f'--epochs must be at least 1, got {args.epochs}.',
                        USAGE_EXIT)
    if args.train_images is not None and args.train_images < 1:
        raise UserError('--train-images must be at least 1, got '
                        f'{args.train_images}.', USAGE_EXIT)
    dirs = run_dirs(args.work_dir, args.seeds)
    for folder in dirs.values():  # any refusal comes before any training
        plan_run(folder, overwrite=args.overwrite, advice=(
            'Pass another --work-dir, or --overwrite to delete them and '
            'train again.'))
    os.makedirs(args.work_dir, exist_ok=True)
    from mmpkkd.runtime.progress import JobClock, ProgressLineHook
    configs = {
        (kind, seed): demo_config(CONFIGS[kind], seed, dirs[(kind, seed)],
                                  args.epochs, args.train_images)
        for seed in args.seeds for kind in KINDS
    }
    plan = list(configs)  # seed by seed, the ANN before PKKD
    clock = JobClock([(kind, configs[(kind, seed)].train_cfg.max_epochs)
                      for kind, seed in plan])
    print(f'{len(plan)} trainings; MMEngine\'s logs go to '
          f'{osp.join(args.work_dir, "<kind>_seed<seed>")}/.')
    start = time.time()
    results = {'cnn': [], 'ann': [], 'pkkd': []}
    for index, (kind, seed) in enumerate(plan):
        progress = ProgressLineHook(f'{LABELS[kind]} seed {seed}', index,
                                    clock)
        metrics = train_and_test(configs[(kind, seed)], progress)
        results[kind].append(metrics['accuracy/top1'])
        if kind == 'pkkd':
            results['cnn'].append(metrics['teacher/accuracy/top1'])
    table = write_outputs(results, args.seeds, args.work_dir,
                          (time.time() - start) / 60, budget_note(args))
    print('\n' + table)
    print(f'Table: {osp.join(args.work_dir, "results.md")} (numbers: '
          f'results.json)\nPlot: {osp.join(args.work_dir, "results.png")}')
    return results


def main(argv=None) -> Dict[str, List[float]]:
    """Run the demo; errors propagate (for use from Python)."""
    args = parse_args(argv)
    import mmpkkd  # noqa: F401  (registers all modules; after --help)
    return run(args)


if __name__ == '__main__':
    cli_args = parse_args()  # --help ends here, before torch loads
    from mmpkkd.utils import run_tool  # noqa: E402
    run_tool(run, cli_args, 'run_demo.py')
