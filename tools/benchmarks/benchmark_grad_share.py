"""Cost of measuring the gradient shares (GradShareHook) on a PKKD step.

Times ``train_step`` of a distiller config on real training batches,
alternating plain steps and steps that also measure
``student.grad_share.<term>``, in one process, and prints the extra time of
a measured step as a fraction of a plain one, and the resulting overhead
at a measurement interval (50 by default: the default log interval).

Example::

    python tools/benchmarks/benchmark_grad_share.py \\
        configs/pkkd/pkkd_resnet20_1xb128-15e_fashionmnist.py --steps 6
"""
import argparse
import statistics
import time

from mmengine.config import DictAction
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope

from mmpkkd.analysis.distill_balance import build_training
from mmpkkd.utils import (USAGE_EXIT, UserError, add_debug_arg, read_config,
                          run_tool)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--steps', type=int, default=6,
                        help='timed steps of each kind (default 6)')
    parser.add_argument('--interval', type=int, default=50,
                        help='measurement interval to report (default 50)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    add_debug_arg(parser)
    return parser.parse_args(argv)


def measure(args) -> dict:
    if args.steps < 2 or args.interval < 1:
        raise UserError('--steps must be >= 2 and --interval >= 1.',
                        USAGE_EXIT)
    cfg = read_config(args.config, args.cfg_options)
    MMLogger.get_instance('benchmark_grad_share', log_level='WARNING')
    if cfg.model.get('type') != 'PKKDDistiller':
        raise UserError(f'{args.config} is not a distiller config.',
                        USAGE_EXIT)
    with DefaultScope.overwrite_default_scope('mmpkkd'):
        model, loader, optim_wrapper = build_training(cfg)
        batches = iter(loader)
        times = {False: [], True: []}
        model.train_step(next(batches), optim_wrapper)  # warm-up
        for step in range(2 * args.steps):
            measured = bool(step % 2)
            data = next(batches)
            if measured:
                model.request_grad_shares()
            start = time.perf_counter()
            model.train_step(data, optim_wrapper)
            times[measured].append(time.perf_counter() - start)
    plain = statistics.median(times[False])
    extra = statistics.median(times[True]) - plain
    return {
        'plain_step_s': plain,
        'measured_step_s': plain + extra,
        'extra_per_measured_step': extra / plain,
        'overhead_at_interval': extra / plain / args.interval,
    }


def report(args: argparse.Namespace) -> dict:
    """Measure and print the overhead; return the measurements."""
    out = measure(args)
    print(f'plain step {out["plain_step_s"] * 1e3:.0f} ms, measured step '
          f'{out["measured_step_s"] * 1e3:.0f} ms (median of {args.steps} '
          f'each): +{100 * out["extra_per_measured_step"]:.0f} % on a '
          f'measured step, {100 * out["overhead_at_interval"]:.1f} % of '
          f'training time at one measurement every {args.interval} '
          'iterations')
    return out


def main(argv=None) -> dict:
    """Run the benchmark; errors propagate (for use from Python)."""
    return report(parse_args(argv))


if __name__ == '__main__':
    run_tool(report, parse_args(), 'benchmark_grad_share.py')
