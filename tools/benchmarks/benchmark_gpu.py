"""Benchmark adder2d's GPU backends against cuDNN and the original code.

For each layer shape (:mod:`mmpkkd.analysis.benchmark.layer_shapes`: the
ResNet-20 CIFAR and ResNet-50 ImageNet layers) it times, in one run and side
by side, forward and forward + backward (input and weight gradients):

* ``triton``    -- the Triton kernels (tile chosen by a fixed rule on the
  layer shape; the first call compiles, and is excluded by the warm-up),
* ``cuda``      -- the CUDA C++ kernels of ``mmpkkd._ext``,
* ``conv``      -- cuDNN ``F.conv2d`` in full float32 (TF32 off),
* ``conv-tf32`` -- cuDNN ``F.conv2d`` with TF32 allowed (torch's default
  for convolutions),
* ``original``  -- the original AdderNet unfold implementation (skipped
  where its MAC-sized temporaries would exceed ``--orig-mem-cap-gb``).

Times are medians of ``triton.testing.do_bench`` (CUDA events, L2 flushed
between runs). Throughput is counted in adder-MACs: the layer's MACs for
the forward, 3x for forward + backward (dX and dW each cost one layer of
MACs). The FP32 adder ceiling printed beside it is

    ceiling = SMs x 128 FP32 lanes x max SM clock / 2,

since one adder-MAC ``acc += |x - w|`` costs two FP32 instructions on
NVIDIA GPUs (a subtract, then an add with the absolute value folded in as
an operand modifier) where a multiply-accumulate costs one FMA; the input
gradient costs more (subtract, clamp, FMA), so forward + backward cannot
reach it. Each Triton result is checked against the CUDA C++ backend when
that is built (relative max error), so a tile configuration that computes
something else would show.

Examples::

    python tools/benchmarks/benchmark_gpu.py --shapes all
    python tools/benchmarks/benchmark_gpu.py --shapes resnet50 --layers 3x3 \\
        --markdown work_dirs/bench_gpu.md --json work_dirs/bench_gpu.json
"""
import argparse
import json
import subprocess
from dataclasses import asdict
from typing import Callable, List, Optional

import torch
import torch.nn.functional as F

from mmpkkd.analysis.benchmark import (LayerShape, check_layer_filter,
                                       environment, select_shapes)
from mmpkkd.ops import (adder2d, adder2d_unfold_original,
                        cuda_backends_available, get_cuda_backend,
                        set_cuda_backend)

IMPLS = ('triton', 'cuda', 'conv', 'conv-tf32', 'original')
MODES = ('fwd', 'fwdbwd')
FP32_LANES_PER_SM = 128  # Volta and later, incl. Hopper


def max_sm_clock_mhz() -> Optional[float]:
    """The GPU's maximum SM clock, from nvidia-smi (None if unavailable)."""
    try:
        out = subprocess.run(
            ['nvidia-smi', '--query-gpu=clocks.max.sm',
             '--format=csv,noheader,nounits', '-i',
             str(torch.cuda.current_device())],
            capture_output=True, text=True, timeout=30)
        return float(out.stdout.strip().splitlines()[0])
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


def adder_ceiling_tmacs(clock_mhz: Optional[float]) -> Optional[float]:
    """FP32 adder-MAC/s ceiling of the current GPU in T/s."""
    if clock_mhz is None:
        return None
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    return sms * FP32_LANES_PER_SM * clock_mhz * 1e6 / 2 / 1e12


def make_impl(name: str) -> Callable:
    """fn(x, w, stride, padding) of one implementation."""
    if name in ('triton', 'cuda'):

        def run(x, w, s, p):
            set_cuda_backend(name)
            return adder2d(x, w, None, s, p)

        return run
    if name == 'original':
        return lambda x, w, s, p: adder2d_unfold_original(x, w, s, p)

    tf32 = name == 'conv-tf32'

    def conv(x, w, s, p):
        torch.backends.cudnn.allow_tf32 = tf32
        return F.conv2d(x, w, None, s, p)

    return conv


def one_run(fn: Callable, shape: LayerShape, mode: str) -> Callable:
    x, w, gy = shape.random_inputs('cuda')

    def run():
        y = fn(x, w, shape.stride, shape.padding)
        if mode == 'fwdbwd':
            torch.autograd.grad(y, (x, w), gy)
        return y

    return run


def check_triton(shape: LayerShape) -> float:
    """Largest relative error of Triton vs CUDA C++ over y, dX, dW."""
    x, w, gy = shape.random_inputs('cuda')
    outs = []
    for name in ('triton', 'cuda'):
        y = make_impl(name)(x, w, shape.stride, shape.padding)
        outs.append((y, *torch.autograd.grad(y, (x, w), gy)))
    return max(((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()
               for a, b in zip(*outs))


def benchmark(shapes: List[LayerShape], impls: List[str], cap_gb: float,
              warmup_ms: int, rep_ms: int) -> List[dict]:
    from triton.testing import do_bench
    records = []
    for shape in shapes:
        rec = dict(name=shape.name, shape=asdict(shape), macs=shape.macs,
                   ms={}, skipped={})
        run = list(impls)
        if 'original' in run and 3 * shape.macs * 4 > cap_gb * 2**30:
            run.remove('original')
            rec['skipped']['original'] = f'needs > {cap_gb} GiB'
        for mode in MODES:
            for name in run:
                fn = one_run(make_impl(name), shape, mode)
                fn()  # compilation / cuDNN algorithm choice
                torch.cuda.synchronize()
                rec['ms'][f'{name}.{mode}'] = do_bench(
                    fn, warmup=warmup_ms, rep=rep_ms, return_mode='median')
        if 'triton' in run and 'cuda' in run:
            rec['triton_vs_cuda_rel_err'] = check_triton(shape)
        records.append(rec)
        print(shape.name, json.dumps({k: round(v, 4)
                                      for k, v in rec['ms'].items()}),
              flush=True)
    return records


def markdown(records: List[dict], impls: List[str],
             ceiling: Optional[float], meta: dict) -> str:
    lines = [
        f'GPU: {meta["gpu"]}, torch {meta["torch"]}, triton '
        f'{meta["triton"]}, max SM clock {meta["clock_mhz"]} MHz; FP32 '
        f'adder ceiling {ceiling:.2f} T adder-MAC/s (SMs x 128 x clock / 2).'
        if ceiling else f'GPU: {meta["gpu"]} (clock unknown: no ceiling)', ''
    ]
    for mode, title in (('fwd', 'forward'),
                        ('fwdbwd', 'forward + backward (dX, dW)')):
        work = 3 if mode == 'fwdbwd' else 1
        head = ['layer', 'GMAC'] + [f'{n} ms' for n in impls] + [
            'triton T/s', 'triton % ceil', 'cuda T/s', 'cuda % ceil',
            'triton/conv', 'triton/conv-tf32', 'original/triton'
        ]
        lines += [f'**{title}** (median ms; T/s = {work}x layer MACs / time)',
                  '', '| ' + ' | '.join(head) + ' |',
                  '|' + '---|' * len(head)]
        for rec in records:
            ms = {n: rec['ms'].get(f'{n}.{mode}') for n in impls}

            def tmacs(n):
                t = ms.get(n)
                return work * rec['macs'] / (t * 1e-3) / 1e12 if t else None

            def ratio(a, b):
                return (f'{ms[a] / ms[b]:.2f}'
                        if ms.get(a) and ms.get(b) else '-')

            cells = [rec['name'], f'{rec["macs"] / 1e9:.2f}'] + [
                f'{ms[n]:.3f}' if ms.get(n) else '-' for n in impls
            ]
            for n in ('triton', 'cuda'):
                t = tmacs(n)
                cells += [f'{t:.2f}' if t else '-',
                          f'{100 * t / ceiling:.0f}' if t and ceiling else '-']
            cells += [ratio('triton', 'conv'), ratio('triton', 'conv-tf32'),
                      ratio('original', 'triton')]
            lines.append('| ' + ' | '.join(cells) + ' |')
        lines.append('')
    errs = [(r['name'], r['triton_vs_cuda_rel_err']) for r in records
            if 'triton_vs_cuda_rel_err' in r]
    if errs:
        worst = max(errs, key=lambda e: e[1])
        lines.append(f'Triton vs CUDA C++ (y, dX, dW; float32): largest '
                     f'relative max error {worst[1]:.1e} ({worst[0]}).')
    return '\n'.join(lines) + '\n'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--shapes', choices=['resnet20', 'resnet50', 'all'],
                        default='all')
    parser.add_argument('--layers', nargs='+', default=None,
                        help='only layers whose name contains one of these')
    parser.add_argument('--batch-resnet20', type=int, default=128)
    parser.add_argument('--batch-resnet50', type=int, default=32)
    parser.add_argument('--impls', nargs='+', choices=IMPLS, default=None)
    parser.add_argument('--orig-mem-cap-gb', type=float, default=8.0)
    parser.add_argument('--warmup-ms', type=int, default=25)
    parser.add_argument('--rep-ms', type=int, default=100)
    parser.add_argument('--markdown', default=None, help='write the tables')
    parser.add_argument('--json', default=None, help='write raw results')
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of an error')
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """Refuse options that cannot work before anything is measured.

    Raises:
        UserError: ``--layers`` matching no layer shape, an output path
            that cannot be written, or no CUDA GPU (exit status 2).
    """
    from mmpkkd.utils import USAGE_EXIT, UserError, check_output_path
    check_layer_filter(args.shapes, args.layers)
    for option, path in (('--markdown', args.markdown),
                         ('--json', args.json)):
        if path:
            check_output_path(path, option=option)
    if not torch.cuda.is_available():
        raise UserError('no CUDA GPU is visible; for the CPU op use '
                        'tools/benchmarks/benchmark_adder.py.', USAGE_EXIT)


def run_benchmark(args: argparse.Namespace) -> None:
    """Measure, print and optionally save the tables of ``args``."""
    from mmpkkd.utils import make_parent
    check_args(args)
    import triton
    impls = args.impls or [
        n for n in IMPLS
        if n not in ('triton', 'cuda') or n in cuda_backends_available()
    ]
    shapes = select_shapes(args.shapes, args.batch_resnet20,
                           args.batch_resnet50, args.layers)
    clock = max_sm_clock_mhz()
    ceiling = adder_ceiling_tmacs(clock)
    meta = environment('cuda', __file__, gpu=torch.cuda.get_device_name(),
                       torch=torch.__version__, triton=triton.__version__,
                       clock_mhz=clock, ceiling_tmacs=ceiling)
    # the implementations switch these; both are put back afterwards
    tf32, backend = torch.backends.cudnn.allow_tf32, get_cuda_backend()
    try:
        records = benchmark(shapes, impls, args.orig_mem_cap_gb,
                            args.warmup_ms, args.rep_ms)
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
        if backend in cuda_backends_available():
            set_cuda_backend(backend)
    text = markdown(records, impls, ceiling, meta)
    print(text)
    if args.markdown:
        with open(make_parent(args.markdown), 'w') as f:
            f.write(text)
    if args.json:
        with open(make_parent(args.json), 'w') as f:
            json.dump(dict(meta=meta, layers=records), f, indent=1)


def main(argv=None) -> None:
    """Run the tool; errors propagate (for use from Python)."""
    run_benchmark(parse_args(argv))


if __name__ == '__main__':
    cli_args = parse_args()  # --help ends here
    from mmpkkd.utils import run_tool  # noqa: E402
    run_tool(run_benchmark, cli_args, 'benchmark_gpu.py')
