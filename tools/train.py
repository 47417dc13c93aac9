"""Train a model from a config with MMEngine's runner.

Example:
    python tools/train.py configs/pkkd/resnet20_digits.py
    python tools/train.py configs/ann/resnet20_cifar10.py --amp --resume
    bash tools/dist_train.sh configs/pkkd/resnet50_imagenet.py 8
"""
import argparse

import torch

from mmengine.config import Config
from mmengine.runner import Runner

import mmpkkd  # noqa: F401  (registers all modules, safe checkpoint loader)
from mmpkkd.utils import add_common_args, close_distributed, load_config


#: --amp settings per dtype. bfloat16 has float32's exponent range, so its
#: gradients need no loss scaling; float16 (GPUs without bfloat16) needs
#: a dynamic loss scale. Either is exact for adder layers: their adaptive
#: learning rate is applied after the gradients are unscaled
#: (AmpAdderOptimWrapper). The adder op itself always computes in float32.
AMP_SETTINGS = {
    'bfloat16': dict(dtype='bfloat16', loss_scale=1.0),
    'float16': dict(dtype='float16', loss_scale='dynamic'),
}
#: optimizer wrapper type -> its mixed-precision counterpart
AMP_WRAPPERS = {
    'OptimWrapper': 'AmpOptimWrapper',
    'AmpOptimWrapper': 'AmpOptimWrapper',
    'AdderOptimWrapper': 'AmpAdderOptimWrapper',
    'AmpAdderOptimWrapper': 'AmpAdderOptimWrapper',
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a classifier or a '
                                     'PKKD distiller.')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='directory for logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint; without a value, from the latest '
        'checkpoint in the work dir')
    parser.add_argument(
        '--amp',
        nargs='?',
        const='auto',
        choices=['auto', 'bfloat16', 'float16'],
        help='automatic mixed precision (CUDA): bfloat16, or float16 with '
        'a dynamic loss scale; without a value, bfloat16 where the GPU '
        'supports it, else float16')
    parser.add_argument(
        '--no-validate', action='store_true', help='skip validation')
    parser.add_argument(
        '--tensorboard',
        action='store_true',
        help='also write scalars for `tensorboard --logdir work_dirs` '
        '(needs: pip install -r requirements/optional.txt)')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr by the actual total batch size over '
        'auto_scale_lr.base_batch_size')
    add_common_args(parser)
    return parser.parse_args()


def build_config(args: argparse.Namespace) -> Config:
    cfg = load_config(args)
    if args.amp is not None:
        if not torch.cuda.is_available():
            raise SystemExit(
                '--amp needs a CUDA device: MMEngine\'s AmpOptimWrapper '
                'uses torch.cuda.amp. Drop --amp to train in float32 on the '
                'CPU.')
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper not in AMP_WRAPPERS:
            raise ValueError(
                f'--amp does not know the mixed-precision form of '
                f'optim_wrapper type {optim_wrapper!r}; use one of '
                f'{sorted(AMP_WRAPPERS)} or set the AMP wrapper in the '
                'config yourself.')
        dtype = args.amp
        if dtype == 'auto':
            dtype = ('bfloat16'
                     if torch.cuda.is_bf16_supported() else 'float16')
        cfg.optim_wrapper.type = AMP_WRAPPERS[optim_wrapper]
        cfg.optim_wrapper.update(AMP_SETTINGS[dtype])
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.tensorboard:
        backend = dict(type='TensorboardVisBackend')
        cfg.visualizer.vis_backends = [*cfg.visualizer.vis_backends, backend]
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    return cfg


def main() -> None:
    args = parse_args()
    runner = Runner.from_cfg(build_config(args))
    runner.train()
    close_distributed()


if __name__ == '__main__':
    main()
