"""Train a model from a config with MMEngine's runner.

A work dir that already holds checkpoints is never silently reused: pass
``--resume`` to continue that run or ``--overwrite`` to start again there.

Example:
    python tools/train.py configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py
    python tools/train.py configs/ann/ann_resnet20_1xb256-400e_cifar10.py \\
        --amp --resume
    bash tools/dist_train.sh configs/pkkd/pkkd_resnet50_8xb32-150e_in1k.py 8
"""
import argparse

from mmengine.config import DictAction  # light: no torch

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


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a classifier or a '
                                     'PKKD distiller.')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='directory for logs and models '
                        '(default: work_dirs/<config name>)')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint; without a value, from the latest '
        'checkpoint of the work dir (an error if it has none)')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='start a new run in a work dir that holds checkpoints of an '
        'earlier run, deleting those checkpoints first')
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
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. train_cfg.max_epochs=5; a key '
        'the config does not have is an error')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of an error')
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace):
    """The config of ``args``: options, --amp, --resume, --no-validate,
    --tensorboard and --auto-scale-lr applied."""
    import torch

    from mmpkkd.runtime import load_config
    from mmpkkd.utils import USAGE_EXIT, UserError
    cfg = load_config(args)
    if args.amp is not None:
        if not torch.cuda.is_available():
            raise UserError(
                '--amp needs a CUDA device: MMEngine\'s AmpOptimWrapper '
                'uses torch.cuda.amp. Drop --amp to train in float32 on the '
                'CPU.', USAGE_EXIT)
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper not in AMP_WRAPPERS:
            raise UserError(
                f'--amp does not know the mixed-precision form of '
                f'optim_wrapper type {optim_wrapper!r}; use one of '
                f'{sorted(AMP_WRAPPERS)} or set the AMP wrapper in the '
                'config yourself.', USAGE_EXIT)
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


def train(args: argparse.Namespace) -> None:
    """Check the work dir, build the runner, train."""
    from mmpkkd.runtime import (adapt_log_interval, build_runner,
                                close_distributed, plan_run)
    cfg = build_config(args)
    resume_from = plan_run(cfg.work_dir, args.resume, args.overwrite,
                           None if args.resume else cfg.get('load_from'))
    if resume_from is not None:
        cfg.load_from = resume_from
    runner = build_runner(cfg)
    adapt_log_interval(runner)
    runner.train()
    close_distributed()


def main(argv=None):
    """Run the tool; errors propagate (for use from Python)."""
    args = parse_args(argv)
    import mmpkkd  # noqa: F401  (registers all modules; after --help)
    return train(args)


if __name__ == '__main__':
    cli_args = parse_args()  # --help ends here, before torch
    from mmpkkd.utils import run_tool  # noqa: E402
    run_tool(train, cli_args, 'train.py')
