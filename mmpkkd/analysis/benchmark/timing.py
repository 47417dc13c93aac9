"""Timing of ``tools/benchmarks/benchmark_*.py``: implementations interleaved.

:func:`time_round_robin` times several implementations of one job with
their runs interleaved (one run of each per round), so that load from
other processes on a shared machine hits every implementation alike.
``torch.utils.benchmark.Timer`` times one statement at a time (with two
warm-up runs per call), so it cannot interleave: this loop is ours.

Example:
    >>> x = torch.randn(64, 64)
    >>> times = time_round_robin({'mm': lambda: x @ x,
    ...                           'add': lambda: x + x}, repeat=5)
    >>> sorted(times)  # median seconds of each
    ['add', 'mm']
"""
import statistics
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


def set_up_run(args) -> None:
    """Apply ``args.threads`` (then set it to the count in use) and stop
    with a message if ``args.device`` is ``'cuda'`` without a GPU."""
    if args.threads:
        torch.set_num_threads(args.threads)
    args.threads = torch.get_num_threads()
    if args.device == 'cuda' and not torch.cuda.is_available():
        sys.exit('--device cuda: no CUDA device available; run on a GPU '
                 'machine or pass --device cpu.')
