"""Benchmark int8 adder inference on the CPU against float32.

Layers (``--shapes``): for each ResNet-20 / ResNet-50 layer shape of
:mod:`mmpkkd.analysis.benchmark.layer_shapes`, timed side by side in one run
(runs interleaved round-robin), forward only:

* ``conv``     -- float32 :func:`torch.nn.functional.conv2d` (oneDNN);
* ``adder``    -- float32 :func:`mmpkkd.ops.adder2d` (native kernels);
* ``int8``     -- :func:`mmpkkd.ops.adder2d_int8`, int8 in, int32 out;
* ``int8+q``   -- :func:`mmpkkd.ops.adder2d_int8_affine`, what an int8
  layer of :mod:`mmpkkd.quantization` runs: float32 in, quantise, int8
  sums, folded-BN affine, float32 out.

Networks (``--networks``): inference images/s (``model(x, mode='tensor')``
on a fixed random batch, ``torch.inference_mode``) of the float32 CNN and
ANN ResNet-20 and of the ANN quantised by
:func:`mmpkkd.quantization.quantize_int8` (random weights and calibration:
speed does not depend on the values; pass ``--int8-file`` to time a saved
int8 model instead), timed side by side.

Examples::

    python tools/benchmarks/benchmark_int8.py --threads 2 --shapes all
    python tools/benchmarks/benchmark_int8.py --threads 2 --networks-only \\
        --net-batch 64 --json work_dirs/bench_int8.json
"""
import argparse
import os.path as osp

import torch
import torch.nn.functional as F

from mmpkkd.analysis.benchmark import (CLOCKS, check_layer_filter,
                                       environment, save_results,
                                       select_shapes, time_round_robin)
from mmpkkd.apis import get_model
from mmpkkd.ops import adder2d, adder2d_int8, adder2d_int8_affine
from mmpkkd.ops import set_cpu_isa
from mmpkkd.quantization import load_int8, quantize_int8
from mmpkkd.utils import add_debug_arg, run_tool

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))

LAYER_IMPLS = ('conv', 'adder', 'int8', 'int8+q')
NETWORKS = {
    'cnn_fp32': 'configs/cnn/cnn_resnet20_1xb64-15e_digits.py',
    'ann_fp32': 'configs/ann/ann_resnet20_1xb64-15e_digits.py',
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--shapes', default='all',
                   choices=['resnet20', 'resnet50', 'all'])
    p.add_argument('--layers', nargs='+', help='keep shapes whose name '
                   'contains one of these')
    p.add_argument('--batch-resnet20', type=int, default=64)
    p.add_argument('--batch-resnet50', type=int, default=2)
    p.add_argument('--networks', action='store_true',
                   help='also time whole ResNet-20 inference')
    p.add_argument('--networks-only', action='store_true')
    p.add_argument('--net-batch', type=int, nargs='+', default=[64, 1])
    p.add_argument('--int8-file', help='time this int8 model (made by '
                   'tools/deployment/quantize_int8.py) as the int8 network')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--isa', default='auto',
                   help='int8 kernel set: auto, avx512, avx2, generic')
    p.add_argument('--timer', choices=sorted(CLOCKS), default='wall',
                   help='wall: elapsed; cpu: CPU time of all threads')
    p.add_argument('--repeat', type=int, default=15)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--json', help='write the results here')
    add_debug_arg(p)
    return p.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """Refuse inputs that cannot work before anything is measured.

    Raises:
        UserError: A missing ``--int8-file``, ``--layers`` matching no
            layer shape, or a ``--json`` path that cannot be written (exit
            status 2).
    """
    from mmpkkd.utils import USAGE_EXIT, UserError, check_output_path
    from mmpkkd.utils.config import missing_file_message
    if args.int8_file and not osp.isfile(args.int8_file):
        raise UserError(missing_file_message(args.int8_file, 'int8'),
                        USAGE_EXIT)
    if not args.networks_only:
        check_layer_filter(args.shapes, args.layers)
    if args.json:
        check_output_path(args.json, [args.int8_file], option='--json')


def layer_cases(shape):
    """The four jobs of one layer shape (inputs made once)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape.n, shape.c, shape.h, shape.w, generator=gen).relu()
    w = torch.randn(shape.cout, shape.c, shape.k, shape.k, generator=gen)
    xq = torch.randint(-128, 128, x.shape, generator=gen, dtype=torch.int8)
    wq = torch.randint(-128, 128, w.shape, generator=gen, dtype=torch.int8)
    alpha, beta = torch.rand(shape.cout), torch.randn(shape.cout)
    s, p = shape.stride, shape.padding
    return {
        'conv': lambda: F.conv2d(x, w, None, s, p),
        'adder': lambda: adder2d(x, w, None, s, p),
        'int8': lambda: adder2d_int8(xq, wq, s, p),
        'int8+q': lambda: adder2d_int8_affine(x, wq, 40.0, -128, alpha, beta,
                                              s, p),
    }


def bench_layers(args) -> list:
    rows = []
    shapes = select_shapes(args.shapes, args.batch_resnet20,
                           args.batch_resnet50, args.layers)
    print(f'\nLayers, forward, {args.threads} threads, {args.timer} time '
          f'(median of {args.repeat}, ms); ratios = float time / int8 time')
    print(f"{'layer':<20}{'MMAC':>7}" +
          ''.join(f'{n:>9}' for n in LAYER_IMPLS) +
          f"{'conv/int8':>11}{'adder/int8':>11}{'conv/int8+q':>12}"
          f"{'adder/int8+q':>13}{'int8 GMAC/s':>12}")
    for shape in shapes:
        with torch.inference_mode():
            t = time_round_robin(layer_cases(shape), args.repeat,
                                 args.warmup, clock=CLOCKS[args.timer])
        row = dict(name=shape.name, macs=shape.macs,
                   ms={k: v * 1e3 for k, v in t.items()})
        row['conv_over_int8'] = t['conv'] / t['int8']
        row['adder_over_int8'] = t['adder'] / t['int8']
        row['conv_over_int8q'] = t['conv'] / t['int8+q']
        row['adder_over_int8q'] = t['adder'] / t['int8+q']
        row['int8_gmacs'] = shape.macs / t['int8'] / 1e9
        rows.append(row)
        print(f'{shape.name:<20}{shape.macs / 1e6:>7.0f}' +
              ''.join(f'{row["ms"][n]:>9.2f}' for n in LAYER_IMPLS) +
              f'{row["conv_over_int8"]:>11.2f}{row["adder_over_int8"]:>11.2f}'
              f'{row["conv_over_int8q"]:>12.2f}'
              f'{row["adder_over_int8q"]:>13.2f}{row["int8_gmacs"]:>12.1f}')
    return rows


def build_networks(args) -> dict:
    nets = {}
    for name, path in NETWORKS.items():
        torch.manual_seed(0)
        nets[name] = get_model(osp.join(REPO, path))
    if args.int8_file:
        nets['ann_int8'] = load_int8(args.int8_file)
    else:
        gen = torch.Generator().manual_seed(1)
        calib = [torch.randn(16, 3, 32, 32, generator=gen)]
        nets['ann_int8'] = quantize_int8(nets['ann_fp32'], calib,
                                         max_samples=16)
    return nets


def bench_networks(args) -> list:
    nets = build_networks(args)
    rows = []
    print(f'\nResNet-20 inference, {args.threads} threads, {args.timer} '
          f'time: images/s (higher is better)')
    for batch in args.net_batch:
        x = torch.randn(batch, 3, 32, 32,
                        generator=torch.Generator().manual_seed(2))
        fns = {n: (lambda m=m: m(x, mode='tensor')) for n, m in nets.items()}
        with torch.inference_mode():
            t = time_round_robin(fns, args.repeat, args.warmup,
                                 clock=CLOCKS[args.timer])
        ips = {n: batch / v for n, v in t.items()}
        row = dict(batch=batch, images_per_s=ips,
                   int8_over_cnn=ips['ann_int8'] / ips['cnn_fp32'],
                   int8_over_ann=ips['ann_int8'] / ips['ann_fp32'])
        rows.append(row)
        print(f'batch {batch:>4}: ' + '  '.join(
            f'{n} {v:8.1f}' for n, v in ips.items()) +
              f'   int8/cnn {row["int8_over_cnn"]:.2f}x   int8/ann '
              f'{row["int8_over_ann"]:.2f}x')
    return rows


def run_benchmark(args: argparse.Namespace) -> None:
    """Measure, print and optionally save the results of ``args``."""
    from mmpkkd.utils import USAGE_EXIT, UserError
    check_args(args)
    torch.set_num_threads(args.threads)
    try:
        set_cpu_isa(args.isa, op='adder2d_int8')
    except ValueError as err:  # a kernel set this CPU cannot run
        raise UserError(f'--isa {args.isa}: {err}.', USAGE_EXIT) from err
    except RuntimeError as err:  # the native int8 kernels are not built
        raise UserError(str(err)) from err
    env = environment('cpu', __file__, timer=args.timer)
    print({key: env[key] for key in ('PyTorch', 'threads', 'cpu_isa',
                                     'timer', 'command')})
    result = dict(environment=env)
    if not args.networks_only:
        result['layers'] = bench_layers(args)
    if args.networks or args.networks_only:
        result['networks'] = bench_networks(args)
    save_results(result, args.json)


def main(argv=None) -> None:
    """Run the tool; errors propagate (for use from Python)."""
    run_benchmark(parse_args(argv))


if __name__ == '__main__':
    run_tool(run_benchmark, parse_args(), 'benchmark_int8.py')
