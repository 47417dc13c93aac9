"""Peak memory of a benchmark case, CPU or CUDA, one case per process.

* :func:`peak_rss_growth` measures CPU peak memory as the growth of the
  process's peak resident set (torch's CPU allocator is invisible to
  tracemalloc); run it in a fresh process per case (:func:`run_case` in the
  parent, :func:`child_case` in the child).
* :func:`cuda_peak_growth` is the growth of
  ``torch.cuda.max_memory_allocated``.

Example:
    >>> peak_rss_growth(lambda: torch.ones(2**20)) >= 4 * 2**20  # 4 MiB
    True
"""
import json
import subprocess
import sys
from typing import Callable, Optional

import torch


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
