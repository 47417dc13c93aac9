"""Evaluate a checkpoint on the test split of a config.

Every weight of the checkpoint must fit the config's model: a checkpoint
tested with another config is refused with the keys that differ and the
config (or ``tools/model_converters/extract_student.py``) that fits it.

The checkpoint may also be an int8 model written by
``tools/deployment/quantize_int8.py``. Its network (the classifier, or the
PKKD student) is built from the config given here, which must describe
the model the file was made from, and evaluated with its int8 layers and
the config's test data and metrics (teacher metrics are dropped: the file
holds no teacher).

Example:
    python tools/test.py configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py \\
        work_dirs/pkkd_resnet20_1xb64-15e_digits/epoch_15.pth
    python tools/test.py configs/ann/ann_resnet20_1xb64-15e_digits.py \\
        student.pth --out r.json
    python tools/test.py configs/ann/ann_resnet20_1xb64-15e_digits.py \\
        r20_int8.safetensors
"""
import argparse
import json
import os.path as osp

from mmengine.config import DictAction  # light: no torch

#: Metrics that need the PKKD teacher, absent from an int8 student file.
TEACHER_METRICS = ('TeacherAccuracy', )


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a checkpoint.')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        'checkpoint', help='checkpoint file (or int8 file), or a URL / '
        'torchvision:// name: downloaded into the torch.hub cache, then '
        'read weights-only')
    parser.add_argument('--work-dir', help='directory for the test logs')
    parser.add_argument(
        '--out', help='write the metrics to this JSON file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. test_dataloader.batch_size=32; '
        'a key the config does not have is an error')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of an error')
    return parser.parse_args(argv)


def without_teacher_metrics(evaluator):
    """``evaluator`` config minus the metrics that need a teacher."""
    if isinstance(evaluator, (list, tuple)):
        kept = [e for e in evaluator if e.get('type') not in TEACHER_METRICS]
        return kept[0] if len(kept) == 1 else kept
    return evaluator


def evaluate(args: argparse.Namespace) -> dict:
    """Check the inputs, get the model, build the runner, evaluate."""
    from mmengine.model import is_model_wrapper

    from mmpkkd.apis import get_model, get_model_cfg
    from mmpkkd.engine.checkpoint import has_scheme
    from mmpkkd.quantization import int8_layers, to_int8_structure
    from mmpkkd.runtime import build_runner, close_distributed, load_config
    from mmpkkd.utils import (USAGE_EXIT, UserError, check_output_path,
                              make_parent)
    from mmpkkd.utils.config import missing_file_message

    cfg = load_config(args)
    if not has_scheme(args.checkpoint) and not osp.isfile(args.checkpoint):
        raise UserError(missing_file_message(args.checkpoint, 'checkpoint'),
                        USAGE_EXIT)
    if args.out:
        check_output_path(args.out, [args.config, args.checkpoint])
    # loaded strictly (an int8 file: checked against the config) before the
    # runner logs anything, so a mismatch is the only thing reported
    loaded = get_model(cfg, args.checkpoint)
    layers = int8_layers(loaded)
    if layers:  # evaluate the config's network, with the file's int8 layers
        cfg.model = get_model_cfg(cfg, student=True)
        cfg.test_evaluator = without_teacher_metrics(cfg.test_evaluator)
    cfg.load_from = None  # the runner's model gets the weights loaded above
    runner = build_runner(cfg)
    model = runner.model.module if is_model_wrapper(
        runner.model) else runner.model
    if layers:
        to_int8_structure(model, layers).cpu()  # CPU-only int8 kernels
    model.load_state_dict(loaded.state_dict(), strict=True)
    metrics = runner.test()
    if args.out and runner.rank == 0:
        with open(make_parent(args.out), 'w') as f:
            json.dump({
                'config': osp.abspath(args.config),
                'checkpoint': args.checkpoint if has_scheme(args.checkpoint)
                else osp.abspath(args.checkpoint),
                'metrics': metrics
            }, f, indent=2)
    close_distributed()
    return metrics


def main(argv=None):
    """Run the tool; errors propagate (for use from Python)."""
    args = parse_args(argv)
    import mmpkkd  # noqa: F401  (registers all modules; after --help)
    return evaluate(args)


if __name__ == '__main__':
    cli_args = parse_args()  # --help ends here, before torch
    from mmpkkd.utils import run_tool  # noqa: E402
    run_tool(evaluate, cli_args, 'test.py')
