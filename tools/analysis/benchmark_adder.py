"""Benchmark the adder2d op against F.conv2d and the original AdderNet code.

For each layer shape it measures, in one run and side by side:

* ``ours``     -- :func:`mmpkkd.ops.adder2d` (native extension),
* ``conv``     -- :func:`torch.nn.functional.conv2d` (same shapes),
* ``original`` -- :func:`mmpkkd.ops.adder2d_unfold_original`, the original
  AdderNet algorithm (one MAC-sized temporary; skipped when its estimated
  peak memory exceeds ``--orig-mem-cap-gb``),

forward and forward+backward (input and weight gradients): the median time
over ``--repeat`` runs after ``--warmup`` runs, and the peak memory of one
run. CPU memory is the peak resident-set growth of a fresh subprocess per
case (``VmHWM`` after resetting it through ``/proc/self/clear_refs``; torch's
CPU allocator is invisible to tracemalloc); CUDA memory is
``torch.cuda.max_memory_allocated`` growth.

With ``--networks`` it then measures whole-network training throughput
(images/s of forward + backward + SGD step on a fixed random batch) of the
CNN, ANN and PKKD ResNet-20 configs, each in a fresh process with its peak
memory (``--networks-only`` skips the layers).

Examples::

    python tools/analysis/benchmark_adder.py --device cpu --shapes resnet20
    python tools/analysis/benchmark_adder.py --networks-only --net-batch 64
    python tools/analysis/benchmark_adder.py --device cuda --shapes all \\
        --json work_dirs/bench_adder_cuda.json
"""
import argparse
import json
import os
import os.path as osp
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
try:
    import mmpkkd  # noqa: F401
except ImportError:  # run from a source checkout without installing
    sys.path.insert(0, REPO)

from mmpkkd.ops import (adder2d, adder2d_unfold_original,  # noqa: E402
                        native_available)

MODES = ('fwd', 'fwdbwd')
IMPLS = ('ours', 'conv', 'original')
# wall: elapsed time; cpu: CPU time of the process (all threads). On a
# machine shared with other jobs, `--threads 1 --timer cpu` measures the
# work itself rather than how long the scheduler let it run.
CLOCKS = {'wall': time.perf_counter, 'cpu': time.process_time}
# Adder-MAC/s ceiling on NVIDIA GPUs: 2 FP32 adds per adder-MAC (sub, then
# add with |.| folded in) = half the FP32 FMA rate. Tera adder-MAC/s.
GPU_ADDER_PEAK_TMACS = {'H100': 16.7, 'H200': 16.7, 'A100': 9.75}


@dataclass
class LayerShape:
    """One adder layer: input (n, c, h, w), weight (cout, c, k, k)."""
    name: str
    n: int
    c: int
    h: int
    w: int
    cout: int
    k: int
    stride: int
    padding: int

    @property
    def out_hw(self):
        ho = (self.h + 2 * self.padding - self.k) // self.stride + 1
        wo = (self.w + 2 * self.padding - self.k) // self.stride + 1
        return ho, wo

    @property
    def macs(self) -> int:
        ho, wo = self.out_hw
        return self.n * self.cout * self.c * self.k * self.k * ho * wo


# ------------------------------------------------------------------ shapes


def resnet20_shapes(batch: int) -> List[LayerShape]:
    """Adder layers of the CIFAR ResNet-20 (32x32 input, widths 16/32/64)."""
    return [
        LayerShape('r20.s1.3x3', batch, 16, 32, 32, 16, 3, 1, 1),
        LayerShape('r20.s2.3x3.s2', batch, 16, 32, 32, 32, 3, 2, 1),
        LayerShape('r20.s2.3x3', batch, 32, 16, 16, 32, 3, 1, 1),
        LayerShape('r20.s2.down1x1', batch, 16, 32, 32, 32, 1, 2, 0),
        LayerShape('r20.s3.3x3.s2', batch, 32, 16, 16, 64, 3, 2, 1),
        LayerShape('r20.s3.3x3', batch, 64, 8, 8, 64, 3, 1, 1),
        LayerShape('r20.s3.down1x1', batch, 32, 16, 16, 64, 1, 2, 0),
    ]


def resnet50_shapes(batch: int) -> List[LayerShape]:
    """Representative ResNet-50 layers at ImageNet resolution (224)."""
    return [
        LayerShape('r50.l1.3x3', batch, 64, 56, 56, 64, 3, 1, 1),
        LayerShape('r50.l1.1x1.reduce', batch, 256, 56, 56, 64, 1, 1, 0),
        LayerShape('r50.l1.1x1.expand', batch, 64, 56, 56, 256, 1, 1, 0),
        LayerShape('r50.l2.3x3.s2', batch, 128, 56, 56, 128, 3, 2, 1),
        LayerShape('r50.l3.3x3', batch, 256, 14, 14, 256, 3, 1, 1),
        LayerShape('r50.l4.3x3', batch, 512, 7, 7, 512, 3, 1, 1),
        LayerShape('r50.l4.1x1.reduce', batch, 2048, 7, 7, 512, 1, 1, 0),
    ]


def select_shapes(args) -> List[LayerShape]:
    shapes = []
    if args.shapes in ('resnet20', 'all'):
        shapes += resnet20_shapes(args.batch_resnet20)
    if args.shapes in ('resnet50', 'all'):
        shapes += resnet50_shapes(args.batch_resnet50)
    if args.layers:
        shapes = [s for s in shapes if any(p in s.name for p in args.layers)]
    return shapes


# ------------------------------------------------------------- the contestants


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


def make_inputs(shape: LayerShape, device: str, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape.n, shape.c, shape.h, shape.w, generator=gen)
    w = torch.randn(shape.cout, shape.c, shape.k, shape.k, generator=gen)
    ho, wo = shape.out_hw
    gy = torch.randn(shape.n, shape.cout, ho, wo, generator=gen)
    return (x.to(device).requires_grad_(), w.to(device).requires_grad_(),
            gy.to(device))


def run_once(fn: Callable, x, w, gy, shape: LayerShape, mode: str):
    y = fn(x, w, shape.stride, shape.padding)
    if mode == 'fwdbwd':
        torch.autograd.grad(y, (x, w), gy)


# ------------------------------------------------------------- measurements


def _sync(device: str):
    if device == 'cuda':
        torch.cuda.synchronize()


def time_cases(fns: Dict[str, Callable], shape: LayerShape, mode: str,
               device: str, repeat: int, warmup: int,
               max_repeat: Dict[str, int],
               clock: Callable[[], float] = time.perf_counter
               ) -> Dict[str, float]:
    """Median time (s) of each fn; the runs are interleaved round-robin so
    that load from other processes hits every implementation alike."""
    inputs = {name: make_inputs(shape, device) for name in fns}
    for name, fn in fns.items():
        for _ in range(min(warmup, max_repeat.get(name, warmup))):
            run_once(fn, *inputs[name], shape, mode)
    times = {name: [] for name in fns}
    for r in range(repeat):
        for name, fn in fns.items():
            if r >= max_repeat.get(name, repeat):
                continue
            _sync(device)
            start = clock()
            run_once(fn, *inputs[name], shape, mode)
            _sync(device)
            times[name].append(clock() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def _proc_status_kb(field: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{field} not in /proc/self/status')


def cpu_peak_memory_child(impl: str, shape: LayerShape, mode: str) -> int:
    """(In a fresh process) peak RSS growth in bytes of one run."""
    fn = make_impls()[impl]
    # initialise thread pools / libraries on a tiny version of the layer
    tiny = LayerShape('tiny', 1, shape.c, 2 * shape.k, 2 * shape.k,
                      shape.cout, shape.k, shape.stride, shape.padding)
    run_once(fn, *make_inputs(tiny, 'cpu'), tiny, mode)
    x, w, gy = make_inputs(shape, 'cpu')
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset VmHWM to the current RSS
    before = _proc_status_kb('VmRSS')
    run_once(fn, x, w, gy, shape, mode)
    return (_proc_status_kb('VmHWM') - before) * 1024


def cpu_peak_memory(impl: str, shape: LayerShape, mode: str,
                    threads: int) -> Optional[int]:
    """Run :func:`cpu_peak_memory_child` in a subprocess."""
    case = json.dumps(dict(impl=impl, mode=mode, threads=threads,
                           shape=asdict(shape)))
    proc = subprocess.run([sys.executable, __file__, '--_mem-case', case],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        print(f'  memory probe failed for {impl}/{shape.name}/{mode}: '
              f'{proc.stderr.strip()[-300:]}')
        return None
    return int(proc.stdout.strip().splitlines()[-1])


def cuda_peak_memory(fn: Callable, shape: LayerShape, mode: str) -> int:
    x, w, gy = make_inputs(shape, 'cuda')
    run_once(fn, x, w, gy, shape, mode)  # warm-up (cuBLAS handles, ...)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    run_once(fn, x, w, gy, shape, mode)
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


# ---------------------------------------------------- whole-network section


def network_case_child(case: dict) -> dict:
    """(In a fresh process) throughput and peak memory of one network."""
    from mmpkkd.analysis import measure_throughput
    config = osp.join(REPO, case['config'])
    if case['device'] == 'cuda':
        return measure_throughput(config, case['batch'], 'cuda',
                                  case['repeat'])
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset VmHWM to the current RSS
    before = _proc_status_kb('VmRSS')
    result = measure_throughput(config, case['batch'], 'cpu', case['repeat'])
    result['peak_mem_mb'] = (_proc_status_kb('VmHWM') - before) / 1024
    return result


def benchmark_networks(args) -> List[dict]:
    """Training images/s of the CNN, ANN and PKKD configs, one process each
    (so each peak-memory figure is that network's alone)."""
    from mmpkkd.analysis import DEFAULT_NETWORKS
    records = []
    for name, config in DEFAULT_NETWORKS.items():
        case = dict(config=config, batch=args.net_batch, device=args.device,
                    repeat=args.net_repeat, threads=args.threads)
        proc = subprocess.run(
            [sys.executable, __file__, '--_net-case', json.dumps(case)],
            capture_output=True, text=True)
        if proc.returncode != 0:
            print(f'  network {name} failed: {proc.stderr.strip()[-500:]}')
            continue
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        records.append(dict(network=name, config=config, **result))
    base = next((r for r in records if r['network'] == 'CNN'), None)
    print(f'\nWhole-network training throughput ({args.device}, batch '
          f'{args.net_batch}, median of {args.net_repeat} steps; data '
          'pipeline excluded):\n')
    print('| network | config | images/s | step (s) | x CNN time | '
          'peak mem (MB) |')
    print('|---|---|---|---|---|---|')
    for r in records:
        slow = r['step_s'] / base['step_s'] if base else float('nan')
        print(f"| {r['network']} | {r['config']} | {r['images_per_s']:.1f} "
              f"| {r['step_s']:.3f} | {slow:.2f} | "
              f"{_fmt(r['peak_mem_mb'], '.0f', 0)} |")
    return records


# --------------------------------------------------------------- the driver


def benchmark_layers(args) -> List[dict]:
    """Time and memory of every (layer, implementation, mode)."""
    impls = make_impls()
    names = [n for n in IMPLS if n in args.impls]
    cap = args.orig_mem_cap_gb * 2**30
    records = []
    for shape in select_shapes(args):
        rec = dict(name=shape.name, shape=asdict(shape), macs=shape.macs,
                   results={}, skipped={})
        print(f'{shape.name}: x=({shape.n},{shape.c},{shape.h},{shape.w}) '
              f'w=({shape.cout},{shape.c},{shape.k},{shape.k}) '
              f's={shape.stride} p={shape.padding} '
              f'{shape.macs / 1e9:.3f} GMAC', flush=True)
        run = {}
        for name in names:
            if name == 'original' and original_peak_estimate(shape) > cap:
                est = original_peak_estimate(shape) / 2**30
                rec['skipped'][name] = (f'estimated peak {est:.1f} GiB > '
                                        f'cap {args.orig_mem_cap_gb} GiB')
                print(f'  original skipped: {rec["skipped"][name]}')
                continue
            run[name] = impls[name]
            rec['results'][name] = {}
        for mode in MODES:
            times = time_cases(run, shape, mode, args.device, args.repeat,
                               args.warmup, dict(original=args.orig_repeat),
                               CLOCKS[args.timer])
            for name in run:
                if args.no_memory:
                    mem = None
                elif args.device == 'cuda':
                    mem = cuda_peak_memory(run[name], shape, mode)
                else:
                    mem = cpu_peak_memory(name, shape, mode, args.threads)
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


def summarize(records: List[dict], device: str,
              adder_peak_tmacs: Optional[float]) -> None:
    """Add ratios to the records and print the tables."""
    for rec in records:
        res = rec['results']
        rec['ratios'] = {}
        for mode in MODES:
            ours = res.get('ours', {}).get(mode)
            conv = res.get('conv', {}).get(mode)
            orig = res.get('original', {}).get(mode)
            work = rec['macs'] * (3 if mode == 'fwdbwd' else 1)
            r = dict(
                ours_over_conv_time=_ratio(ours and ours['time_ms'],
                                           conv and conv['time_ms']),
                original_over_ours_time=_ratio(orig and orig['time_ms'],
                                               ours and ours['time_ms']),
                ours_over_conv_mem=_ratio(ours and ours['peak_bytes'],
                                          conv and conv['peak_bytes']),
                original_over_ours_mem=_ratio(orig and orig['peak_bytes'],
                                              ours and ours['peak_bytes']),
                ours_gmacs=(work / ours['time_ms'] / 1e6) if ours else None,
                conv_gmacs=(work / conv['time_ms'] / 1e6) if conv else None)
            if device == 'cuda' and ours and adder_peak_tmacs:
                r['ours_tmacs'] = r['ours_gmacs'] / 1e3
                r['ours_fraction_of_adder_peak'] = (r['ours_tmacs'] /
                                                    adder_peak_tmacs)
            rec['ratios'][mode] = r

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
                    f'{_fmt(t("ours"), width=8)} {_fmt(t("original"), width=9)} '
                    f'{_fmt(r["ours_over_conv_time"], width=9)} '
                    f'{_fmt(r["original_over_ours_time"], ".1f", 9)} '
                    f'{_fmt(r["ours_gmacs"], ".1f", 11)} '
                    f'{_fmt(r["conv_gmacs"], ".1f", 11)}')
            if device == 'cuda':
                line += (f' {_fmt(r.get("ours_tmacs"), ".2f", 13)} '
                         f'{_fmt(100 * r["ours_fraction_of_adder_peak"] if r.get("ours_fraction_of_adder_peak") else None, ".0f", 7)}')
            print(line)

    if any(v.get('peak_bytes') is not None for rec in records
           for impl in rec['results'].values() for v in impl.values()):
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

                print(f'{rec["name"]:20s} {mode:6s} {_fmt(m("conv"), ".1f", 8)} '
                      f'{_fmt(m("ours"), ".1f", 8)} '
                      f'{_fmt(m("original"), ".1f", 9)} '
                      f'{_fmt(r["ours_over_conv_mem"], ".2f", 9)} '
                      f'{_fmt(r["original_over_ours_mem"], ".1f", 9)}')
    for rec in records:
        for name, why in rec['skipped'].items():
            print(f'note: {rec["name"]}: {name} skipped ({why})')


def environment(args) -> dict:
    info = dict(
        device=args.device,
        timer=args.timer,
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        python=platform.python_version(),
        cpu=platform.processor() or platform.machine(),
        native=native_available(args.device),
        command=' '.join([osp.relpath(__file__)] + sys.argv[1:]),
    )
    try:
        from mmpkkd import _ext
        info['cpu_isa'] = _ext.cpu_isa()
    except ImportError:
        pass
    if args.device == 'cuda':
        info['gpu'] = torch.cuda.get_device_name()
    return info


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
    parser.add_argument('--networks', action='store_true',
                        help='also measure whole-network training '
                        'throughput of the CNN, ANN and PKKD ResNet-20')
    parser.add_argument('--networks-only', action='store_true',
                        help='skip the layer benchmark')
    parser.add_argument('--net-batch', type=int, default=64)
    parser.add_argument('--net-repeat', type=int, default=5)
    parser.add_argument('--json', default=None, help='write results here')
    parser.add_argument('--_mem-case', dest='mem_case', default=None,
                        help=argparse.SUPPRESS)
    parser.add_argument('--_net-case', dest='net_case', default=None,
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.mem_case is not None:  # subprocess of cpu_peak_memory
        case = json.loads(args.mem_case)
        if case['threads']:
            torch.set_num_threads(case['threads'])
        print(cpu_peak_memory_child(case['impl'], LayerShape(**case['shape']),
                                    case['mode']))
        return
    if args.net_case is not None:  # subprocess of benchmark_networks
        case = json.loads(args.net_case)
        if case['threads']:
            torch.set_num_threads(case['threads'])
        print(json.dumps(network_case_child(case)))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    args.threads = torch.get_num_threads()
    if args.device == 'cuda' and not torch.cuda.is_available():
        sys.exit('--device cuda: no CUDA device available')
    if args.device == 'cuda' and args.timer == 'cpu':
        sys.exit('--timer cpu measures host CPU time; use --timer wall on '
                 'CUDA')
    if 'ours' in args.impls and not native_available(args.device):
        print('WARNING: the native extension is not available on '
              f'{args.device}; "ours" measures the pure-PyTorch fallback')
    env = environment(args)
    print(json.dumps(env))
    result = dict(meta=env)
    if not args.networks_only:
        result['layers'] = benchmark_layers(args)
        summarize(result['layers'], args.device, gpu_adder_peak(args))
    if args.networks or args.networks_only:
        result['networks'] = benchmark_networks(args)
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)
        print(f'results written to {args.json}')


if __name__ == '__main__':
    main()
