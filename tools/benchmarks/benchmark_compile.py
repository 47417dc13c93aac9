"""Benchmark eager vs ``torch.compile`` training steps of an adder network.

Both runs start from the same weights and train on the same fixed random
batch, side by side in one process: for each of ``eager`` and ``compiled``
one training step is forward (``model(x, mode='tensor')``, the logits),
cross-entropy, backward, AdderNet's adaptive learning rate
(``rescale_adder_grads``) and an SGD step (these last two stay eager in
both). Eager and compiled steps alternate, so load from other processes on
the machine falls on both alike. The compiled model is ``torch.compile(model,
fullgraph=True)``, so a graph break would fail the run rather than be timed.

Reported: the median step time over ``--steps`` timed steps (after
``--warmup`` steps; the compiled model's first call, which compiles, is
timed separately), the ratio eager / compiled (above 1: compiled is
faster), and how far the compiled first step is from the eager one (max
relative error of the logits and of the weight gradients), so a speed-up is
never reported for a model that computes something else.

Examples::

    python tools/benchmarks/benchmark_compile.py
    python tools/benchmarks/benchmark_compile.py \\
        configs/ann/ann_resnet20_1xb256-400e_cifar10.py \\
        --batch-size 64 --steps 20 --json work_dirs/bench_compile.json
"""
import argparse
import copy
import json
import os.path as osp
import statistics
import time
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmpkkd.analysis.benchmark import environment
from mmpkkd.apis import TensorModeWrapper, get_model
from mmpkkd.models import rescale_adder_grads
from mmpkkd.utils import add_debug_arg, run_tool

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))

DEFAULT_CONFIG = osp.join(REPO, 'configs', 'ann',
                          'ann_resnet20_1xb256-400e_cifar10.py')


def train_step(model: nn.Module, opt: torch.optim.Optimizer,
               x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    opt.zero_grad(set_to_none=True)
    logits = model(x)
    F.cross_entropy(logits, y).backward()
    rescale_adder_grads(opt.param_groups[0]['params'])
    opt.step()
    return logits


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b|."""
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def first_step_errors(eager: nn.Module, compiled: nn.Module, x, y) -> Dict:
    """Logit and weight-gradient errors of the compiled first step (no
    optimizer step; both models start from the same weights)."""
    out = {}
    grads = []
    for m in (eager, compiled):
        m.zero_grad(set_to_none=True)
        logits = m(x)
        F.cross_entropy(logits, y).backward()
        grads.append([p.grad.detach().clone() for p in m.parameters()])
        out.setdefault('logits', []).append(logits.detach())
    return {
        'logits_rel_err': rel_err(out['logits'][1], out['logits'][0]),
        'grad_rel_err_max': max(
            rel_err(gc, ge) for ge, gc in zip(grads[0], grads[1])),
    }


def time_steps(runs: List[Tuple], x, y, warmup: int,
               steps: int) -> List[List[float]]:
    """Step times of each ``(model, optimizer)``, the models alternating."""
    times = [[] for _ in runs]
    for i in range(warmup + steps):
        for (model, opt), record in zip(runs, times):
            t0 = time.perf_counter()
            train_step(model, opt, x, y)
            if i >= warmup:
                record.append(time.perf_counter() - t0)
    return times


def run(args) -> Dict:
    torch.manual_seed(args.seed)  # the same initial weights in every run
    base = get_model(args.config)
    base.init_weights()
    base.train()
    eager = TensorModeWrapper(copy.deepcopy(base))
    compiled_module = TensorModeWrapper(copy.deepcopy(base))
    compiled = torch.compile(
        compiled_module, fullgraph=True, backend=args.backend)
    gen = torch.Generator().manual_seed(args.seed)
    x = torch.randn(args.batch_size, 3, args.image_size, args.image_size,
                    generator=gen)
    num_classes = base.head.num_classes
    y = torch.randint(0, num_classes, (args.batch_size, ), generator=gen)

    t0 = time.perf_counter()
    errors = first_step_errors(eager, compiled, x, y)
    first_call = time.perf_counter() - t0

    opts = [torch.optim.SGD(m.parameters(), lr=args.lr, momentum=0.9)
            for m in (eager, compiled_module)]
    eager_t, comp_t = time_steps([(eager, opts[0]), (compiled, opts[1])],
                                 x, y, args.warmup, args.steps)
    eager_med, comp_med = statistics.median(eager_t), statistics.median(
        comp_t)
    return dict(
        config=osp.relpath(osp.abspath(args.config), REPO),
        backend=args.backend,
        batch_size=args.batch_size,
        image_size=args.image_size,
        steps=args.steps,
        warmup=args.warmup,
        environment=environment('cpu', __file__),
        eager_step_s=eager_med,
        compiled_step_s=comp_med,
        ratio_eager_over_compiled=eager_med / comp_med,
        first_compiled_call_s=first_call,
        **errors)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Eager vs torch.compile training-step time (CPU).')
    parser.add_argument('config', nargs='?', default=DEFAULT_CONFIG,
                        help='classifier config (default: ANN ResNet-20 '
                        'CIFAR-10)')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--image-size', type=int, default=32)
    parser.add_argument('--steps', type=int, default=10,
                        help='timed steps per mode (median reported)')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--backend', default='inductor',
                        help='torch.compile backend')
    parser.add_argument('--lr', type=float, default=0.01)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int,
                        help='torch.set_num_threads (default: torch default)')
    parser.add_argument('--json', help='also write the result here')
    add_debug_arg(parser)
    return parser.parse_args(argv)


def summarize(r: Dict) -> str:
    return '\n'.join([
        f"{r['config']}  batch {r['batch_size']}x3x{r['image_size']}x"
        f"{r['image_size']}, {r['environment']['threads']} threads, backend "
        f"{r['backend']}, torch {r['environment']['PyTorch']}",
        f"eager    step  {r['eager_step_s'] * 1e3:9.1f} ms (median of "
        f"{r['steps']})",
        f"compiled step  {r['compiled_step_s'] * 1e3:9.1f} ms",
        f"ratio eager/compiled  {r['ratio_eager_over_compiled']:.2f}x",
        f"first compiled call (compilation)  "
        f"{r['first_compiled_call_s']:.1f} s",
        f"compiled vs eager: logits rel err {r['logits_rel_err']:.2e}, "
        f"weight-grad rel err (max over params) "
        f"{r['grad_rel_err_max']:.2e}",
    ])


def run_benchmark(args: argparse.Namespace) -> Dict:
    """Check the inputs, time both modes, print and optionally save."""
    from mmpkkd.utils import (USAGE_EXIT, UserError, check_output_path,
                              make_parent)
    from mmpkkd.utils.config import missing_file_message
    if not osp.isfile(args.config):
        raise UserError(missing_file_message(args.config, 'config'),
                        USAGE_EXIT)
    if args.json:
        check_output_path(args.json, [args.config], option='--json')
    if args.threads:
        torch.set_num_threads(args.threads)
    result = run(args)
    print(summarize(result))
    if args.json:
        with open(make_parent(args.json), 'w') as f:
            json.dump(result, f, indent=2)
    return result


def main(argv=None) -> Dict:
    """Run the tool; errors propagate (for use from Python)."""
    return run_benchmark(parse_args(argv))


if __name__ == '__main__':
    run_tool(run_benchmark, parse_args(), 'benchmark_compile.py')
