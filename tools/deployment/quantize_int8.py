"""Quantise the adder layers of a trained ANN / PKKD student to int8.

Calibrates on the config's training data (test-time pipeline, a fixed
shuffled subset), reports float32 and int8 top-1 on the config's test set,
and saves the int8 model; ``tools/test.py CONFIG FILE`` evaluates that file
like a checkpoint. See docs/user_guides/int8.md for the method.

Example:
    python tools/deployment/quantize_int8.py \\
        configs/ann/ann_resnet20_1xb64-15e_digits.py \\
        work_dirs/ann_resnet20_1xb64-15e_digits/epoch_15.pth \\
        --out work_dirs/r20_int8.safetensors
    python tools/test.py configs/ann/ann_resnet20_1xb64-15e_digits.py \\
        work_dirs/r20_int8.safetensors
"""
import argparse
import json
import os.path as osp
import time
from typing import Iterator, Tuple

from mmengine.config import DictAction  # light: no torch


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Int8-quantise the adder layers of a checkpoint.')
    parser.add_argument('config', help='ANN or PKKD config file')
    parser.add_argument('checkpoint', help='float checkpoint (epoch_*.pth)')
    parser.add_argument(
        '--out', required=True,
        help='int8 model file to write (safetensors, int8 format 3; e.g. '
        'r20_int8.safetensors)')
    parser.add_argument(
        '--calib-batches',
        type=int,
        default=8,
        help='training batches used for calibration (default 8)')
    parser.add_argument(
        '--max-samples',
        type=int,
        default=64,
        help='images per layer kept to choose the clip (default 64)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the calibration subset')
    parser.add_argument('--json', help='also write the accuracies here')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config entries; a key the config does not have is '
        'an error')
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of an error')
    return parser.parse_args(argv)


def build_loader(cfg, split: str, seed: int):
    """Training data with the test pipeline (shuffled with ``seed``), or
    the test loader."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    if split == 'test':
        loader = cfg.test_dataloader.to_dict()
    else:
        loader = cfg.train_dataloader.to_dict()
        test_dataset = cfg.test_dataloader.to_dict()['dataset']
        loader['dataset']['pipeline'] = test_dataset['pipeline']
        loader['sampler'] = dict(type='DefaultSampler', shuffle=True,
                                 seed=seed)
    loader['num_workers'] = 0
    loader['persistent_workers'] = False
    with DefaultScope.overwrite_default_scope('mmpkkd'):
        return Runner.build_dataloader(loader, seed=seed)


def batches(model, loader,
            limit: int = None) -> Iterator[Tuple[object, list]]:
    """Preprocessed ``(inputs, data_samples)`` of ``loader``."""
    for i, data in enumerate(loader):
        if limit is not None and i >= limit:
            return
        data = model.data_preprocessor(data, False)
        yield data['inputs'], data['data_samples']


def top1(net, loader) -> float:
    """Top-1 accuracy (%) of ``net(x, mode='tensor')`` on ``loader``."""
    import torch
    correct = total = 0
    with torch.no_grad():
        for inputs, samples in batches(net, loader):
            pred = net(inputs, mode='tensor').argmax(1)
            labels = torch.cat([s.gt_label for s in samples]).view(-1)
            correct += int((pred == labels).sum())
            total += labels.numel()
    return 100.0 * correct / max(total, 1)


def quantize(args: argparse.Namespace) -> dict:
    """Check the paths, calibrate, report, save."""
    from mmpkkd.apis import get_model, get_model_cfg
    from mmpkkd.quantization import quantize_int8, save_int8
    from mmpkkd.utils import (USAGE_EXIT, UserError, check_output_path,
                              make_parent, read_config)
    from mmpkkd.utils.config import missing_file_message
    cfg = read_config(args.config, args.cfg_options)
    if not osp.isfile(args.checkpoint):
        raise UserError(missing_file_message(args.checkpoint, 'checkpoint'),
                        USAGE_EXIT)
    for value, option in ((args.calib_batches, '--calib-batches'),
                          (args.max_samples, '--max-samples')):
        if value < 1:
            raise UserError(f'{option} must be at least 1, got {value}.',
                            USAGE_EXIT)
    check_output_path(args.out, [args.config, args.checkpoint])
    if args.json:
        check_output_path(args.json, [args.config, args.checkpoint, args.out],
                          option='--json')
    # the ANN (a PKKD config: its student, with the student.* weights)
    net = get_model(cfg, args.checkpoint, student=True)

    t0 = time.time()
    calib = (x for x, _ in batches(
        net, build_loader(cfg, 'train', args.seed), args.calib_batches))
    qnet = quantize_int8(net, calib, max_samples=args.max_samples)
    t_calib = time.time() - t0

    test_loader = build_loader(cfg, 'test', args.seed)
    acc_float = top1(net, test_loader)
    acc_int8 = top1(qnet, test_loader)
    results = {
        'config': osp.abspath(args.config),
        'checkpoint': osp.abspath(args.checkpoint),
        'float32_top1': acc_float,
        'int8_top1': acc_int8,
        'delta_pt': acc_int8 - acc_float,
        'calib_batches': args.calib_batches,
        'calib_seed': args.seed,
        'calib_seconds': round(t_calib, 2),
    }
    save_int8(qnet, make_parent(args.out),
              get_model_cfg(cfg, student=True), meta=results)
    print(f'float32 top-1 {acc_float:.2f} %   int8 top-1 {acc_int8:.2f} %   '
          f'(delta {acc_int8 - acc_float:+.2f} pt; calibration '
          f'{t_calib:.1f} s on {args.calib_batches} batches)')
    print(f'saved int8 model to {args.out}')
    if args.json:
        with open(make_parent(args.json), 'w') as f:
            json.dump(results, f, indent=2)
    return results


def main(argv=None) -> dict:
    """Run the tool; errors propagate (for use from Python)."""
    args = parse_args(argv)
    import mmpkkd  # noqa: F401  (registers modules; after --help)
    return quantize(args)


if __name__ == '__main__':
    cli_args = parse_args()  # --help ends here, before torch loads
    from mmpkkd.utils import run_tool  # noqa: E402
    run_tool(quantize, cli_args, 'quantize_int8.py')
