"""Timing and peak-memory helpers of ``tools/analysis/benchmark_*.py``.

* :func:`time_round_robin` times several implementations of one job with
  their runs interleaved (one run of each per round), so that load from
  other processes on a shared machine hits every implementation alike.
  ``torch.utils.benchmark.Timer`` times one statement at a time (with two
  warm-up runs per call), so it cannot interleave: this loop is ours.
* :func:`peak_rss_growth` measures CPU peak memory as the growth of the
  process's peak resident set (torch's CPU allocator is invisible to
  tracemalloc); run it in a fresh process per case (:func:`run_case`).
* :func:`cuda_peak_growth` is the growth of
  ``torch.cuda.max_memory_allocated``.

Example:
    >>> x = torch.randn(64, 64)
    >>> times = time_round_robin({'mm': lambda: x @ x,
    ...                           'add': lambda: x + x}, repeat=5)
    >>> sorted(times)  # median seconds of each
    ['add', 'mm']
"""
import json
import os
import os.path as osp
import platform
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, Optional

import torch

#: ``wall``: elapsed time; ``cpu``: CPU time of the process, all threads.
#: On a machine shared with other jobs, ``cpu`` with one thread measures
#: the work itself rather than how long the scheduler let it run.
CLOCKS: Dict[str, Callable[[], float]] = {
    'wall': time.perf_counter,
    'cpu': time.process_time
}


def sync(device: str) -> None:
    """Wait for queued CUDA work (no-op on CPU)."""
    if device == 'cuda':
        torch.cuda.synchronize()


def time_round_robin(fns: Dict[str, Callable[[], None]],
                     repeat: int,
                     warmup: int = 0,
                     max_repeat: Optional[Dict[str, int]] = None,
                     clock: Callable[[], float] = time.perf_counter,
                     device: str = 'cpu') -> Dict[str, float]:
    """Median time in seconds of each function, runs interleaved.

    Args:
        fns (dict[str, Callable]): Implementations, each run without
            arguments.
        repeat (int): Timed rounds; each runs every function once.
        warmup (int): Untimed runs of each function first.
        max_repeat (dict[str, int], optional): At most this many warm-up
            and timed runs for the named (slow) functions.
        clock (Callable): :data:`CLOCKS` ``['wall']`` or ``['cpu']``.
        device (str): ``'cuda'`` synchronises around every run.

    Returns:
        dict[str, float]: Median seconds per run, by name.
    """
    caps = max_repeat or {}
    for name, fn in fns.items():
        for _ in range(min(warmup, caps.get(name, warmup))):
            fn()
    times = {name: [] for name in fns}
    for r in range(repeat):
        for name, fn in fns.items():
            if r >= caps.get(name, repeat):
                continue
            sync(device)
            start = clock()
            fn()
            sync(device)
            times[name].append(clock() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def _proc_status_kb(field: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{field} not in /proc/self/status; peak memory '
                       'needs Linux (or pass --no-memory).')


def peak_rss_growth(fn: Callable[[], object]) -> int:
    """Bytes by which the peak resident set grows while ``fn`` runs.

    ``VmHWM`` is reset to the current RSS through ``/proc/self/clear_refs``
    first. Library start-up counts too: warm up in the same process, on a
    small case, before calling this.
    """
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset VmHWM to the current RSS
    before = _proc_status_kb('VmRSS')
    fn()
    return (_proc_status_kb('VmHWM') - before) * 1024


def cuda_peak_growth(fn: Callable[[], object]) -> int:
    """Bytes by which ``torch.cuda.max_memory_allocated`` grows in ``fn``."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def run_case(script: str, flag: str, case: dict) -> Optional[object]:
    """Run ``python script flag JSON(case)`` in a fresh process.

    Returns:
        The JSON value the child printed on its last stdout line, or None
        (after printing the child's error) when it failed.
    """
    proc = subprocess.run([sys.executable, script, flag, json.dumps(case)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        print(f'  case {case} failed: {proc.stderr.strip()[-500:]}')
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child_case(case_json: str) -> dict:
    """(In the child of :func:`run_case`) the case, its thread count
    applied."""
    case = json.loads(case_json)
    if case.get('threads'):
        torch.set_num_threads(case['threads'])
    return case


def set_up_run(args) -> None:
    """Apply ``args.threads`` (then set it to the count in use) and stop
    with a message if ``args.device`` is ``'cuda'`` without a GPU."""
    if args.threads:
        torch.set_num_threads(args.threads)
    args.threads = torch.get_num_threads()
    if args.device == 'cuda' and not torch.cuda.is_available():
        sys.exit('--device cuda: no CUDA device available; run on a GPU '
                 'machine or pass --device cpu.')


def environment(device: str, script: str, **extra) -> dict:
    """What a benchmark ran on: versions, threads, CPU kernel set, GPU and
    the command line (``script`` and ``sys.argv``)."""
    from mmpkkd.ops import native_available
    info = dict(
        device=device,
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        python=platform.python_version(),
        cpu=platform.processor() or platform.machine(),
        native=native_available(device),
        command=' '.join([osp.relpath(script)] + sys.argv[1:]),
        **extra)
    try:
        from mmpkkd import _ext
        info['cpu_isa'] = _ext.cpu_isa()
    except (ImportError, AttributeError):
        pass
    if device == 'cuda':
        info['gpu'] = torch.cuda.get_device_name()
    return info


def save_results(result: dict, path: Optional[str]) -> None:
    """Write a benchmark's results as JSON to ``path`` (if given)."""
    if not path:
        return
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(result, f, indent=2)
    print(f'results written to {path}')
