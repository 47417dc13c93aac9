"""Benchmark the adder2d op against F.conv2d and the original AdderNet code.

For each layer shape it measures, in one run and side by side:

* ``ours``     -- :func:`mmpkkd.ops.adder2d` (native extension),
* ``conv``     -- :func:`torch.nn.functional.conv2d` (same shapes),
* ``original`` -- :func:`mmpkkd.ops.adder2d_unfold_original`, the original
  AdderNet algorithm (one MAC-sized temporary; skipped when its estimated
  peak memory exceeds ``--orig-mem-cap-gb``),

forward and forward+backward (input and weight gradients): the median time
over ``--repeat`` runs after ``--warmup`` runs, the runs of the
implementations interleaved round-robin, and the peak memory of one run.
CPU memory is the peak resident-set growth of a fresh subprocess per case
(``VmHWM`` after resetting it through ``/proc/self/clear_refs``; torch's
CPU allocator is invisible to tracemalloc); CUDA memory is
``torch.cuda.max_memory_allocated`` growth. Whole-network training
throughput is ``tools/benchmarks/benchmark_network.py``.

Examples::

    python tools/benchmarks/benchmark_adder.py --device cpu --shapes resnet20
    python tools/benchmarks/benchmark_adder.py --shapes all --threads 1 \\
        --timer cpu --repeat 7 --json bench_cpu_t1.json
    python tools/benchmarks/benchmark_adder.py --device cuda --shapes all \\
        --json work_dirs/bench_adder_cuda.json
"""
import argparse
import json
from dataclasses import asdict
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F

from mmpkkd.analysis.benchmark import (CLOCKS, LayerShape, check_layer_filter,
                                       child_case, cuda_peak_growth,
                                       environment,
                                       peak_rss_growth, run_case,
                                       save_results, select_shapes,
                                       set_up_run, time_round_robin)
from mmpkkd.ops import adder2d, adder2d_unfold_original, native_available
from mmpkkd.utils import add_debug_arg, run_tool

MODES = ('fwd', 'fwdbwd')
IMPLS = ('ours', 'conv', 'original')
# Adder-MAC/s ceiling on NVIDIA GPUs: 2 FP32 adds per adder-MAC (sub, then
# add with |.| folded in) = half the FP32 FMA rate. Tera adder-MAC/s.
GPU_ADDER_PEAK_TMACS = {'H100': 16.7, 'H200': 16.7, 'A100': 9.75}


def make_impls() -> Dict[str, Callable]:
    """name -> fn(x, w, stride, padding) returning the layer output."""
    return {
        'ours': lambda x, w, s, p: adder2d(x, w, None, s, p),
        'conv': lambda x, w, s, p: F.conv2d(x, w, None, s, p),
        'original': lambda x, w, s, p: adder2d_unfold_original(x, w, s, p),
    }


def original_peak_estimate(shape: LayerShape, itemsize: int = 4) -> int:
    """Bytes the original needs at its peak (3 MAC-sized temporaries)."""
    return 3 * shape.macs * itemsize


def one_run(fn: Callable, shape: LayerShape, mode: str,
            device: str = 'cpu') -> Callable[[], None]:
    """A closure running ``fn`` once on its own seeded inputs: forward, or
    forward + backward to the input and the weight."""
    x, w, gy = shape.random_inputs(device)

    def run() -> None:
        y = fn(x, w, shape.stride, shape.padding)
        if mode == 'fwdbwd':
            torch.autograd.grad(y, (x, w), gy)

    return run


def cpu_peak_memory_child(impl: str, shape: LayerShape, mode: str) -> int:
    """(In a fresh process) peak RSS growth in bytes of one run."""
    fn = make_impls()[impl]
    # initialise thread pools / libraries on a tiny version of the layer
    tiny = LayerShape('tiny', 1, shape.c, 2 * shape.k, 2 * shape.k,
                      shape.cout, shape.k, shape.stride, shape.padding)
    one_run(fn, tiny, mode)()
    return peak_rss_growth(one_run(fn, shape, mode))


def peak_memory(impl: str, shape: LayerShape, mode: str,
                args) -> Optional[int]:
    """Peak memory of one run: CUDA allocator growth, or the RSS growth of
    a fresh CPU process."""
    if args.device == 'cuda':
        run = one_run(make_impls()[impl], shape, mode, 'cuda')
        run()  # warm-up (cuBLAS handles, ...)
        return cuda_peak_growth(run)
    case = dict(impl=impl, mode=mode, threads=args.threads,
                shape=asdict(shape))
    return run_case(__file__, '--_mem-case', case)


def benchmark_layers(args) -> List[dict]:
    """Time and memory of every (layer, implementation, mode)."""
    impls = make_impls()
    names = [n for n in IMPLS if n in args.impls]
    cap = args.orig_mem_cap_gb * 2**30
    records = []
    for shape in select_shapes(args.shapes, args.batch_resnet20,
                               args.batch_resnet50, args.layers):
        rec = dict(name=shape.name, shape=asdict(shape), macs=shape.macs,
                   results={}, skipped={})
        print(f'{shape.name}: x=({shape.n},{shape.c},{shape.h},{shape.w}) '
              f'w=({shape.cout},{shape.c},{shape.k},{shape.k}) '
              f's={shape.stride} p={shape.padding} '
              f'{shape.macs / 1e9:.3f} GMAC', flush=True)
        run = [n for n in names if n != 'original'
               or original_peak_estimate(shape) <= cap]
        if 'original' in names and 'original' not in run:
            est = original_peak_estimate(shape) / 2**30
            rec['skipped']['original'] = (f'estimated peak {est:.1f} GiB > '
                                          f'cap {args.orig_mem_cap_gb} GiB')
            print(f'  original skipped: {rec["skipped"]["original"]}')
        rec['results'] = {name: {} for name in run}
        for mode in MODES:
            times = time_round_robin(
                {n: one_run(impls[n], shape, mode, args.device)
                 for n in run}, args.repeat, args.warmup,
                dict(original=args.orig_repeat), CLOCKS[args.timer],
                args.device)
            for name in run:
                mem = None if args.no_memory else peak_memory(
                    name, shape, mode, args)
                t = times[name]
                rec['results'][name][mode] = dict(time_ms=t * 1e3,
                                                  peak_bytes=mem)
                print(f'  {name:8s} {mode:6s} {t * 1e3:9.2f} ms'
                      + (f'  peak {mem / 2**20:8.1f} MiB'
                         if mem is not None else ''), flush=True)
        records.append(rec)
    return records


# ------------------------------------------------------------------ report


def _ratio(a, b):
    return a / b if (a is not None and b) else None


def _fmt(v, spec='.2f', width=7):
    return f'{v:{width}{spec}}' if v is not None else ' ' * (width - 1) + '-'


def add_ratios(records: List[dict], device: str,
               adder_peak_tmacs: Optional[float]) -> None:
    """Time and memory ratios and GMAC/s of every record, in place."""
    for rec in records:
        res = rec['results']
        rec['ratios'] = {}
        for mode in MODES:
            ours, conv, orig = (res.get(n, {}).get(mode) for n in IMPLS)

            def get(v, key):
                return v[key] if v else None

            work = rec['macs'] * (3 if mode == 'fwdbwd' else 1)
            r = dict(
                ours_over_conv_time=_ratio(get(ours, 'time_ms'),
                                           get(conv, 'time_ms')),
                original_over_ours_time=_ratio(get(orig, 'time_ms'),
                                               get(ours, 'time_ms')),
                ours_over_conv_mem=_ratio(get(ours, 'peak_bytes'),
                                          get(conv, 'peak_bytes')),
                original_over_ours_mem=_ratio(get(orig, 'peak_bytes'),
                                              get(ours, 'peak_bytes')),
                ours_gmacs=(work / ours['time_ms'] / 1e6) if ours else None,
                conv_gmacs=(work / conv['time_ms'] / 1e6) if conv else None)
            if device == 'cuda' and ours and adder_peak_tmacs:
                r['ours_tmacs'] = r['ours_gmacs'] / 1e3
                r['ours_fraction_of_adder_peak'] = (r['ours_tmacs'] /
                                                    adder_peak_tmacs)
            rec['ratios'][mode] = r


def print_time_tables(records: List[dict], device: str) -> None:
    for mode, title in (('fwd', 'forward'),
                        ('fwdbwd', 'forward + backward (dX, dW)')):
        print(f'\n== {title}: median time (ms), ratios, GMAC/s '
              f'({"3x " if mode == "fwdbwd" else ""}layer MACs / time)')
        head = (f'{"layer":20s} {"conv":>8s} {"ours":>8s} {"orig":>9s} '
                f'{"ours/conv":>9s} {"orig/ours":>9s} {"ours GMAC/s":>11s} '
                f'{"conv GMAC/s":>11s}')
        if device == 'cuda':
            head += f' {"T adder-MAC/s":>13s} {"% peak":>7s}'
        print(head)
        for rec in records:
            res, r = rec['results'], rec['ratios'][mode]

            def t(name):
                v = res.get(name, {}).get(mode)
                return v['time_ms'] if v else None

            line = (f'{rec["name"]:20s} {_fmt(t("conv"), width=8)} '
                    f'{_fmt(t("ours"), width=8)} '
                    f'{_fmt(t("original"), width=9)} '
                    f'{_fmt(r["ours_over_conv_time"], width=9)} '
                    f'{_fmt(r["original_over_ours_time"], ".1f", 9)} '
                    f'{_fmt(r["ours_gmacs"], ".1f", 11)} '
                    f'{_fmt(r["conv_gmacs"], ".1f", 11)}')
            if device == 'cuda':
                frac = r.get('ours_fraction_of_adder_peak')
                line += (f' {_fmt(r.get("ours_tmacs"), ".2f", 13)} '
                         f'{_fmt(100 * frac if frac else None, ".0f", 7)}')
            print(line)


def print_memory_table(records: List[dict]) -> None:
    if not any(v.get('peak_bytes') is not None for rec in records
               for impl in rec['results'].values() for v in impl.values()):
        return
    print('\n== peak memory of one run (MiB) and ratios')
    print(f'{"layer":20s} {"mode":6s} {"conv":>8s} {"ours":>8s} '
          f'{"orig":>9s} {"ours/conv":>9s} {"orig/ours":>9s}')
    for rec in records:
        for mode in MODES:
            res, r = rec['results'], rec['ratios'][mode]

            def m(name):
                v = res.get(name, {}).get(mode)
                b = v['peak_bytes'] if v else None
                return b / 2**20 if b is not None else None

            print(f'{rec["name"]:20s} {mode:6s} '
                  f'{_fmt(m("conv"), ".1f", 8)} '
                  f'{_fmt(m("ours"), ".1f", 8)} '
                  f'{_fmt(m("original"), ".1f", 9)} '
                  f'{_fmt(r["ours_over_conv_mem"], ".2f", 9)} '
                  f'{_fmt(r["original_over_ours_mem"], ".1f", 9)}')


def gpu_adder_peak(args) -> Optional[float]:
    if args.adder_peak_tmacs:
        return args.adder_peak_tmacs
    if args.device != 'cuda':
        return None
    name = torch.cuda.get_device_name()
    for key, peak in GPU_ADDER_PEAK_TMACS.items():
        if key in name:
            return peak
    return None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Benchmark mmpkkd adder2d vs F.conv2d vs the original '
        'AdderNet implementation (time and peak memory).')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--shapes', choices=['resnet20', 'resnet50', 'all'],
                        default='all')
    parser.add_argument('--layers', nargs='+', default=None,
                        help='only layers whose name contains one of these '
                        'substrings (e.g. r50.l4 down1x1)')
    parser.add_argument('--repeat', type=int, default=10,
                        help='timed runs per case (median reported)')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--orig-repeat', type=int, default=3,
                        help='at most this many timed runs for the slow '
                        'original')
    parser.add_argument('--batch-resnet20', type=int, default=64)
    parser.add_argument('--batch-resnet50', type=int, default=2)
    parser.add_argument('--orig-mem-cap-gb', type=float, default=4.0,
                        help='skip the original where its estimated peak '
                        'memory (3 MAC-sized float32 temporaries) is above')
    parser.add_argument('--impls', nargs='+', choices=IMPLS,
                        default=list(IMPLS))
    parser.add_argument('--threads', type=int, default=None,
                        help='torch.set_num_threads (default: torch default)')
    parser.add_argument('--timer', choices=sorted(CLOCKS), default='wall',
                        help='wall clock, or process CPU time (use with '
                        '--threads 1 on a loaded machine; CPU only)')
    parser.add_argument('--no-memory', action='store_true',
                        help='skip the peak-memory measurements')
    parser.add_argument('--adder-peak-tmacs', type=float, default=None,
                        help='GPU adder-MAC/s ceiling in T/s (default: known '
                        'GPUs, e.g. 16.7 for H100 SXM)')
    parser.add_argument('--json', default=None, help='write results here')
    add_debug_arg(parser)
    parser.add_argument('--_mem-case', dest='mem_case', default=None,
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """Refuse options that cannot work before anything is measured.

    Raises:
        UserError: ``--timer cpu`` on CUDA, ``--layers`` matching no layer
            shape, or a ``--json`` path that cannot be written (exit
            status 2).
    """
    from mmpkkd.utils import USAGE_EXIT, UserError, check_output_path
    if args.device == 'cuda' and args.timer == 'cpu':
        raise UserError('--timer cpu measures host CPU time; use --timer '
                        'wall on CUDA.', USAGE_EXIT)
    check_layer_filter(args.shapes, args.layers)
    if args.json:
        check_output_path(args.json, option='--json')


def run_benchmark(args: argparse.Namespace) -> None:
    """Measure, print and optionally save the results of ``args``."""
    if args.mem_case is not None:  # subprocess of peak_memory
        case = child_case(args.mem_case)
        print(cpu_peak_memory_child(case['impl'], LayerShape(**case['shape']),
                                    case['mode']))
        return
    check_args(args)
    set_up_run(args)
    if 'ours' in args.impls and not native_available(args.device):
        print('WARNING: the native extension is not available on '
              f'{args.device}; "ours" measures the pure-PyTorch fallback')
    env = environment(args.device, __file__, timer=args.timer)
    print(json.dumps(env))
    result = dict(meta=env, layers=benchmark_layers(args))
    add_ratios(result['layers'], args.device, gpu_adder_peak(args))
    print_time_tables(result['layers'], args.device)
    print_memory_table(result['layers'])
    for rec in result['layers']:
        for name, why in rec['skipped'].items():
            print(f'note: {rec["name"]}: {name} skipped ({why})')
    save_results(result, args.json)


def main(argv=None) -> None:
    """Run the tool; errors propagate (for use from Python)."""
    run_benchmark(parse_args(argv))


if __name__ == '__main__':
    run_tool(run_benchmark, parse_args(), 'benchmark_adder.py')
