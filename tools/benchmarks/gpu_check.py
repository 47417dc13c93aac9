"""Run every GPU-only check of mmpkkd and write one markdown report.

One command for a machine with an NVIDIA GPU (after ``MMPKKD_WITH_CUDA=1
pip install --no-build-isolation -e .`` built the extension with its CUDA
C++ kernels, which the Triton kernels are compared with; without them those
comparisons are skipped)::

    python tools/benchmarks/gpu_check.py --out work_dirs/gpu_check

Steps, each in its own process with its own time limit (a failing or
timed-out step is reported and the next one still runs):

1. ``tests``     -- the op tests on the GPU: both backends (Triton, CUDA
   C++) against the float64 reference, each other, torch's precision APIs,
   streams, opcheck and ``torch.compile`` (tests/test_ops/test_adder2d*.py),
   and the static sm_90 machine-code check
   (tests/test_ops/test_triton_sass.py);
2. ``sanitizer`` -- ``compute-sanitizer`` memcheck and racecheck on a small
   forward + backward of both backends (see :func:`sanitizer_case`);
3. ``benchmark`` -- ``tools/benchmarks/benchmark_gpu.py``: Triton vs CUDA C++
   vs cuDNN (and the original code) on the ResNet-20 and ResNet-50 layer
   shapes, with T adder-MAC/s next to the GPU's FP32 adder ceiling;
4. ``pkkd``      -- one epoch of PKKD on digits on the GPU
   (configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py, then its evaluation);
5. ``cpu_tests`` -- the CPU op tests on this machine's host CPU, which may
   have native AVX-512 (GPU hidden).

The report (``report.md``) lists each step's command, status, time and the
end of its output; full logs are beside it. ``--steps`` runs a subset.
"""
import argparse
import os
import os.path as osp
import shlex
import subprocess
import sys
import time
from typing import Dict, List

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STEPS = ('tests', 'sanitizer', 'benchmark', 'pkkd', 'cpu_tests')


def sanitizer_case() -> None:
    """A small forward + backward of each GPU backend (what the sanitizer
    watches): float32 and float64, groups, stride 2 with padding, a 1x1
    layer, and sizes that are no tile multiple."""
    import torch

    from mmpkkd.ops import (adder2d, cuda_backends_available,
                            set_cuda_backend)
    shapes = [  # (N, C, H, W, C_out, k, stride, padding, groups)
        (2, 6, 9, 7, 10, 3, 1, 1, 2),
        (3, 17, 11, 13, 33, 3, 2, 1, 1),
        (2, 35, 8, 8, 70, 1, 1, 0, 1),
    ]
    for backend in cuda_backends_available():
        set_cuda_backend(backend)
        for dtype in (torch.float32, torch.float64):
            for n, c, h, w, co, k, s, p, g in shapes:
                x = torch.randn(n, c, h, w, device='cuda', dtype=dtype,
                                requires_grad=True)
                wt = torch.randn(co, c // g, k, k, device='cuda',
                                 dtype=dtype, requires_grad=True)
                b = torch.randn(co, device='cuda', dtype=dtype,
                                requires_grad=True)
                y = adder2d(x, wt, b, s, p, 1, g)
                y.backward(torch.randn_like(y))
        torch.cuda.synchronize()
        print(f'sanitizer case: {backend} done', flush=True)


def commands(out: str) -> Dict[str, List[List[str]]]:
    py = sys.executable
    tests = ['tests/test_ops/test_adder2d.py',
             'tests/test_ops/test_adder2d_triton.py',
             'tests/test_ops/test_triton_sass.py']
    sanitizer = [
        'compute-sanitizer', '--error-exitcode', '1',
        '--target-processes', 'all'
    ]
    case = [py, osp.join('tools', 'benchmarks', 'gpu_check.py'),
            '--sanitizer-case']
    return {
        'tests': [[py, '-m', 'pytest', '-q', '-rs', *tests]],
        'sanitizer': [sanitizer + ['--tool', 'memcheck'] + case,
                      sanitizer + ['--tool', 'racecheck'] + case],
        'benchmark': [[
            py, 'tools/benchmarks/benchmark_gpu.py', '--shapes', 'all',
            '--warmup-ms', '10', '--rep-ms', '50',
            '--markdown', osp.join(out, 'benchmark.md'), '--json',
            osp.join(out, 'benchmark.json')
        ]],
        'pkkd': [[
            py, 'tools/train.py',
            'configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py',
            '--work-dir', osp.join(out, 'pkkd_digits'), '--cfg-options',
            'train_cfg.max_epochs=1'
        ]],
        'cpu_tests': [[py, '-m', 'pytest', '-q', '-rs',
                       'tests/test_ops/test_adder2d.py', 'tests/test_ops/test_int8.py']],
    }


def step_env(name: str) -> Dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    if name == 'sanitizer':
        env['PYTORCH_NO_CUDA_MEMORY_CACHING'] = '1'  # exact allocations
    if name == 'cpu_tests':
        env['CUDA_VISIBLE_DEVICES'] = ''
        env['TRITON_INTERPRET'] = '0'
    return env


def run_step(name: str, cmds: List[List[str]], out: str,
             timeout: float) -> dict:
    log_path = osp.join(out, f'{name}.log')
    status, start = 'passed', time.time()
    with open(log_path, 'w') as log:
        for cmd in cmds:
            log.write(f'$ {shlex.join(cmd)}\n')
            log.flush()
            left = timeout - (time.time() - start)
            try:
                proc = subprocess.run(cmd, cwd=REPO, env=step_env(name),
                                      stdout=log, stderr=subprocess.STDOUT,
                                      timeout=max(1.0, left))
                if proc.returncode != 0:
                    status = f'FAILED (exit {proc.returncode})'
            except subprocess.TimeoutExpired:
                status = f'TIMED OUT after {timeout:.0f} s'
                break
            except FileNotFoundError as err:
                status = f'NOT RUN ({err.filename} not found)'
                break
    with open(log_path) as f:
        tail = f.read()[-2500:]
    result = dict(name=name, status=status, seconds=time.time() - start,
                  commands=[shlex.join(c) for c in cmds], tail=tail)
    print(f'[gpu_check] {name}: {status} ({result["seconds"]:.0f} s)',
          flush=True)
    return result


def environment() -> str:
    """The machine and software, one ``- key: value`` line each."""
    import torch

    from mmpkkd.analysis.benchmark import environment as collect
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = 'not installed'
    env = collect('cuda' if torch.cuda.is_available() else 'cpu',
                  triton=triton_version)
    env.pop('PyTorch compiling details', None)  # a page of build flags
    return '\n'.join(f'- {key}: {value}' for key, value in env.items())


def write_report(results: List[dict], out: str, env_text: str) -> str:
    lines = ['# mmpkkd GPU check', '', env_text, '',
             '| step | status | seconds |', '|---|---|---|']
    lines += [f'| {r["name"]} | {r["status"]} | {r["seconds"]:.0f} |'
              for r in results]
    for r in results:
        lines += ['', f'## {r["name"]}: {r["status"]}', '']
        lines += [f'    $ {c}' for c in r['commands']]
        bench = osp.join(out, 'benchmark.md')
        if r['name'] == 'benchmark' and osp.exists(bench):
            with open(bench) as f:
                lines += ['', f.read()]
        else:
            lines += ['', '```', r['tail'].rstrip(), '```']
    path = osp.join(out, 'report.md')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='work_dirs/gpu_check',
                        help='folder for report.md and the logs')
    parser.add_argument('--steps', nargs='+', choices=STEPS,
                        default=list(STEPS))
    parser.add_argument('--timeout', type=float, default=600,
                        help='seconds per step')
    parser.add_argument('--budget', type=float, default=None,
                        help='seconds for all steps together: a step gets '
                        'at most what is left, and steps after the budget '
                        'is spent are reported as not run')
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of an error')
    parser.add_argument('--sanitizer-case', action='store_true',
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def check(args: argparse.Namespace) -> int:
    """Run the steps of ``args`` and write the report.

    Returns:
        int: 0 if every step passed, else 1.

    Raises:
        UserError: ``--out`` is a file or lies below one (exit status 2).
    """
    from mmpkkd.utils import check_output_path
    if args.sanitizer_case:
        sanitizer_case()
        return 0
    # report.md goes into --out: the folder must be creatable
    check_output_path(osp.join(args.out, 'report.md'), option='--out')
    os.makedirs(args.out, exist_ok=True)
    env_text = environment()
    print(env_text, flush=True)
    cmds = commands(args.out)
    results, start = [], time.time()
    for name in args.steps:
        left = (args.budget - (time.time() - start)
                if args.budget is not None else args.timeout)
        if left < 10:
            results.append(dict(name=name, status='NOT RUN (budget spent)',
                                seconds=0.0, commands=[], tail=''))
            continue
        results.append(
            run_step(name, cmds[name], args.out, min(args.timeout, left)))
        write_report(results, args.out, env_text)  # after every step
    print(f'report: {osp.join(args.out, "report.md")}')
    return int(any(r['status'] != 'passed' for r in results))


def main(argv=None) -> int:
    """Run the tool; errors propagate (for use from Python)."""
    return check(parse_args(argv))


if __name__ == '__main__':
    cli_args = parse_args()  # --help ends here
    from mmpkkd.utils import run_tool  # noqa: E402
    sys.exit(run_tool(check, cli_args, 'gpu_check.py'))
