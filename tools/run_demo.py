"""The main job: PKKD vs a plain ANN on the embedded digits data, 3 seeds.

For every seed, trains the adder ResNet-20 alone (``configs/ann/
resnet20_digits.py``) and with PKKD (``configs/pkkd/resnet20_digits.py``,
which co-trains the CNN teacher), with the same schedule, then evaluates the
final weights on the fixed test split (no checkpoint selection on it).
Prints a table of mean and standard deviation over the seeds and writes
``results.md``, ``results.json`` and ``results.png`` to the work dir.

Example:
    python tools/run_demo.py --work-dir work_dirs/demo --seeds 0 1 2
"""
import argparse
import json
import os
import os.path as osp
import statistics
import time
from typing import Dict, List

from mmengine.config import Config
from mmengine.runner import Runner

import mmpkkd  # noqa: F401  (registers all modules)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
ANN_CONFIG = osp.join(REPO, 'configs/ann/resnet20_digits.py')
PKKD_CONFIG = osp.join(REPO, 'configs/pkkd/resnet20_digits.py')
ROWS = [('CNN teacher (co-trained in PKKD)', 'cnn'),
        ('ANN trained alone', 'ann'), ('ANN trained with PKKD', 'pkkd')]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument(
        '--epochs', type=int, help='override the configs\' schedule length')
    return parser.parse_args()


def train_and_test(config: str, seed: int, work_dir: str,
                   epochs: int = None) -> Dict[str, float]:
    cfg = Config.fromfile(config)
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.default_hooks.logger.interval = 1000
    cfg.default_hooks.checkpoint.save_best = None
    if epochs is not None:
        cfg.train_cfg.max_epochs = epochs
        cfg.param_scheduler.T_max = epochs
    cfg.train_cfg.val_interval = cfg.train_cfg.max_epochs
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner.test()


def mean_std(values: List[float]) -> tuple:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.mean(values), spread


def summarise(values: List[float]) -> str:
    return '{:.2f} ± {:.2f}'.format(*mean_std(values))


def write_outputs(results: Dict[str, List[float]], seeds: List[int],
                  work_dir: str, minutes: float) -> str:
    header = ('| model | top-1 (%) mean ± std | per seed |\n'
              '|---|---|---|\n')
    rows = ''.join(
        f'| {label} | {summarise(results[key])} | '
        f"{', '.join(f'{v:.2f}' for v in results[key])} |\n"
        for label, key in ROWS)
    table = (f'Adder ResNet-20 on scikit-learn digits (450 test images), '
             f'seeds {seeds}, {minutes:.1f} min on this machine.\n\n'
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


def main() -> None:
    args = parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    start = time.time()
    results = {'cnn': [], 'ann': [], 'pkkd': []}
    for seed in args.seeds:
        ann = train_and_test(ANN_CONFIG, seed,
                             osp.join(args.work_dir, f'ann_seed{seed}'),
                             args.epochs)
        pkkd = train_and_test(PKKD_CONFIG, seed,
                              osp.join(args.work_dir, f'pkkd_seed{seed}'),
                              args.epochs)
        results['ann'].append(ann['accuracy/top1'])
        results['pkkd'].append(pkkd['accuracy/top1'])
        results['cnn'].append(pkkd['teacher/accuracy/top1'])
    table = write_outputs(results, args.seeds, args.work_dir,
                          (time.time() - start) / 60)
    print('\n' + table)
    print(f'Written: {osp.join(args.work_dir, "results.md")}, results.json, '
          'results.png')


if __name__ == '__main__':
    main()
