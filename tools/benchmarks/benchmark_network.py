"""Whole-network training throughput of the CNN, ANN and PKKD ResNet-20.

Images/s of forward + backward + SGD step on a fixed random batch (the data
pipeline excluded) for each network of
:data:`mmpkkd.analysis.benchmark.DEFAULT_NETWORKS`, timed by
``torch.utils.benchmark.Timer`` (mean of ``--repeat`` steps after two
warm-up steps). Each network runs in a fresh process, so each peak-memory
figure is that network's alone: on CPU the growth of the process's peak
resident set, on CUDA ``torch.cuda.max_memory_allocated``.

Examples::

    python tools/benchmarks/benchmark_network.py --batch 64 --repeat 5 \\
        --json bench_net.json
    python tools/benchmarks/benchmark_network.py --device cuda --batch 256
"""
import argparse
import json
import os.path as osp
from typing import List

from mmpkkd.analysis.benchmark import (DEFAULT_NETWORKS, child_case,
                                       environment, measure_throughput,
                                       peak_rss_growth, run_case,
                                       save_results, set_up_run)
from mmpkkd.utils import add_debug_arg, run_tool

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def network_case_child(case: dict) -> dict:
    """(In a fresh process) throughput and peak memory of one network."""
    config = osp.join(REPO, case['config'])
    if case['device'] == 'cuda':
        return measure_throughput(config, case['batch'], 'cuda',
                                  case['repeat'])
    result = {}
    growth = peak_rss_growth(lambda: result.update(measure_throughput(
        config, case['batch'], 'cpu', case['repeat'])))
    return dict(result, peak_mem_mb=growth / 2**20)


def benchmark_networks(args) -> List[dict]:
    """Training images/s of each network, one process each."""
    records = []
    for name, config in DEFAULT_NETWORKS.items():
        case = dict(config=config, batch=args.batch, device=args.device,
                    repeat=args.repeat, threads=args.threads)
        result = run_case(__file__, '--_net-case', case)
        if result is not None:
            records.append(dict(network=name, config=config, **result))
    return records


def print_table(records: List[dict], args) -> None:
    base = next((r for r in records if r['network'] == 'CNN'), None)
    print(f'\nWhole-network training throughput ({args.device}, batch '
          f'{args.batch}, mean of {args.repeat} steps; data pipeline '
          'excluded):\n')
    print('| network | config | images/s | step (s) | x CNN time | '
          'peak mem (MB) |')
    print('|---|---|---|---|---|---|')
    for r in records:
        slow = f"{r['step_s'] / base['step_s']:.2f}" if base else '-'
        mem = r['peak_mem_mb']
        print(f"| {r['network']} | {r['config']} | {r['images_per_s']:.1f} "
              f"| {r['step_s']:.3f} | {slow} | "
              f"{'-' if mem is None else f'{mem:.0f}'} |")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Training throughput (images/s) and peak memory of the '
        'CNN, ANN and PKKD ResNet-20 configs, one process each.')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--batch', type=int, default=64,
                        help='images per step (default: %(default)s)')
    parser.add_argument('--repeat', type=int, default=5,
                        help='timed steps (default: %(default)s)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch.set_num_threads (default: torch default)')
    parser.add_argument('--json', default=None, help='write results here')
    add_debug_arg(parser)
    parser.add_argument('--_net-case', dest='net_case', default=None,
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """Refuse options that cannot work before anything is measured.

    Raises:
        UserError: ``--batch`` or ``--repeat`` below 1, or a ``--json``
            path that cannot be written (exit status 2).
    """
    from mmpkkd.utils import USAGE_EXIT, UserError, check_output_path
    for option, value in (('--batch', args.batch), ('--repeat', args.repeat)):
        if value < 1:
            raise UserError(f'{option} must be at least 1, got {value}.',
                            USAGE_EXIT)
    if args.json:
        check_output_path(args.json, option='--json')


def run_benchmark(args: argparse.Namespace) -> None:
    """Measure, print and optionally save the results of ``args``."""
    if args.net_case is not None:  # subprocess of benchmark_networks
        print(json.dumps(network_case_child(child_case(args.net_case))))
        return
    check_args(args)
    set_up_run(args)
    env = environment(args.device, __file__)
    print(json.dumps(env))
    result = dict(meta=env, networks=benchmark_networks(args))
    print_table(result['networks'], args)
    save_results(result, args.json)


def main(argv=None) -> None:
    """Run the tool; errors propagate (for use from Python)."""
    run_benchmark(parse_args(argv))


if __name__ == '__main__':
    run_tool(run_benchmark, parse_args(), 'benchmark_network.py')
