"""Quantise the adder layers of a trained ANN / PKKD student to int8.

Calibrates on the config's training data (test-time pipeline, a fixed
shuffled subset), reports float32 and int8 top-1 on the config's test set,
and saves the int8 model; ``tools/test.py CONFIG FILE`` evaluates that file
like a checkpoint. See docs/int8.md for the method.

Example:
    python tools/deployment/quantize_int8.py configs/ann/resnet20_digits.py \\
        work_dirs/resnet20_digits/epoch_15.pth --out work_dirs/r20_int8.pth
    python tools/test.py configs/ann/resnet20_digits.py work_dirs/r20_int8.pth
"""
import argparse
import json
import os
import os.path as osp
import time
from typing import Iterator, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config, DictAction
from mmengine.registry import DefaultScope
from mmengine.runner import Runner, load_checkpoint

import mmpkkd  # noqa: F401  (registers modules)
from mmpkkd.quantization import (
    build_float_model,
    classifier_of,
    quantize_int8,
    save_int8,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Int8-quantise the adder layers of a checkpoint.')
    parser.add_argument('config', help='ANN or PKKD config file')
    parser.add_argument('checkpoint', help='float checkpoint (epoch_*.pth)')
    parser.add_argument('--out', required=True, help='int8 model file')
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
        help='override config entries')
    return parser.parse_args()


def classifier_cfg(cfg: Config) -> dict:
    """The float classifier's model config (PKKD: the student), with the
    data preprocessor of the config, so an int8 file rebuilds alone."""
    model = cfg.model.to_dict()
    preprocessor = model.get('data_preprocessor') or cfg.get(
        'data_preprocessor')
    if model.get('type') == 'PKKDDistiller':
        model = dict(model['student'])
    if preprocessor is not None:
        preprocessor = dict(preprocessor)
        preprocessor.pop('batch_augments', None)  # training only
        model.setdefault('data_preprocessor', preprocessor)
    return model


def build_loader(cfg: Config, split: str, seed: int):
    """Training data with the test pipeline (shuffled with ``seed``), or
    the test loader."""
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


def batches(model: nn.Module, loader, limit: int = None
            ) -> Iterator[Tuple[torch.Tensor, list]]:
    """Preprocessed ``(inputs, data_samples)`` of ``loader``."""
    for i, data in enumerate(loader):
        if limit is not None and i >= limit:
            return
        data = model.data_preprocessor(data, False)
        yield data['inputs'], data['data_samples']


@torch.no_grad()
def top1(net: nn.Module, model: nn.Module, loader) -> float:
    """Top-1 accuracy (%) of ``net(x, mode='tensor')`` on ``loader``."""
    correct = total = 0
    for inputs, samples in batches(model, loader):
        pred = net(inputs, mode='tensor').argmax(1)
        labels = torch.cat([s.gt_label for s in samples]).view(-1)
        correct += int((pred == labels).sum())
        total += labels.numel()
    return 100.0 * correct / max(total, 1)


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model_cfg = cfg.model.to_dict()
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = build_float_model(model_cfg)
    load_checkpoint(model, args.checkpoint, map_location='cpu', strict=True)
    model.eval()
    net = classifier_of(model)

    t0 = time.time()
    calib = (x for x, _ in batches(
        model, build_loader(cfg, 'train', args.seed), args.calib_batches))
    qnet = quantize_int8(net, calib, max_samples=args.max_samples)
    t_calib = time.time() - t0

    test_loader = build_loader(cfg, 'test', args.seed)
    acc_float = top1(net, model, test_loader)
    acc_int8 = top1(qnet, model, test_loader)
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
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    save_int8(qnet, args.out, classifier_cfg(cfg), meta=results)
    print(f'float32 top-1 {acc_float:.2f} %   int8 top-1 {acc_int8:.2f} %   '
          f'(delta {acc_int8 - acc_float:+.2f} pt; calibration '
          f'{t_calib:.1f} s on {args.calib_batches} batches)')
    print(f'saved int8 model to {args.out}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=2)


if __name__ == '__main__':
    main()
