"""Evaluate a checkpoint on the test split of a config.

Example:
    python tools/test.py configs/pkkd/resnet20_digits.py work_dirs/x/epoch_30.pth
    python tools/test.py configs/ann/resnet20_digits.py student.pth --out r.json
"""
import argparse
import json
import os.path as osp

from mmengine.runner import Runner

import mmpkkd  # noqa: F401  (registers all modules, safe checkpoint loader)
from mmpkkd.utils import add_common_args, close_distributed, load_config


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a checkpoint.')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='directory for the test logs')
    parser.add_argument(
        '--out', help='write the metrics to this JSON file')
    add_common_args(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    if args.out and runner.rank == 0:
        with open(args.out, 'w') as f:
            json.dump({
                'config': osp.abspath(args.config),
                'checkpoint': osp.abspath(args.checkpoint),
                'metrics': metrics
            }, f, indent=2)
    close_distributed()


if __name__ == '__main__':
    main()
