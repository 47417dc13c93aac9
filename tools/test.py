"""Evaluate a checkpoint on the test split of a config.

The checkpoint may also be an int8 model written by
``tools/deployment/quantize_int8.py``: the network stored in that file (the
classifier, or the PKKD student) is rebuilt with its int8 layers and
evaluated with the config's test data and metrics (teacher metrics are
dropped: the file holds no teacher).

Example:
    python tools/test.py configs/pkkd/resnet20_digits.py work_dirs/x/epoch_30.pth
    python tools/test.py configs/ann/resnet20_digits.py student.pth --out r.json
    python tools/test.py configs/ann/resnet20_digits.py r20_int8.pth
"""
import argparse
import json
import os.path as osp

from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

import mmpkkd  # noqa: F401  (registers all modules, safe checkpoint loader)
from mmpkkd.engine import CheckpointError, safe_torch_load
from mmpkkd.quantization import is_int8_dict, load_int8
from mmpkkd.utils import add_common_args, close_distributed, load_config

#: Metrics that need the PKKD teacher, absent from an int8 student file.
TEACHER_METRICS = ('TeacherAccuracy', )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a checkpoint.')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='directory for the test logs')
    parser.add_argument(
        '--out', help='write the metrics to this JSON file')
    add_common_args(parser)
    return parser.parse_args()


def read_int8_file(path: str):
    """The int8 model dict in ``path``, or None for any other checkpoint
    (a checkpoint that cannot be read is left for the runner to report)."""
    try:
        data = safe_torch_load(path, map_location='cpu')
    except CheckpointError:
        return None
    return data if is_int8_dict(data) else None


def without_teacher_metrics(evaluator):
    """``evaluator`` config minus the metrics that need a teacher."""
    if isinstance(evaluator, (list, tuple)):
        kept = [e for e in evaluator if e.get('type') not in TEACHER_METRICS]
        return kept[0] if len(kept) == 1 else kept
    return evaluator


def main() -> None:
    args = parse_args()
    cfg = load_config(args)
    int8 = read_int8_file(args.checkpoint)
    if int8 is None:
        cfg.load_from = args.checkpoint
    else:  # evaluate the stored network, with its int8 layers
        cfg.model = int8['model_cfg']
        cfg.test_evaluator = without_teacher_metrics(cfg.test_evaluator)
    runner = Runner.from_cfg(cfg)
    if int8 is not None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        load_int8(int8, model=model).cpu()  # the int8 kernels are CPU-only
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
