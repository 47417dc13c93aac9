"""What a benchmark ran on, and where its results go.

:func:`environment` is MMEngine's
:func:`~mmengine.utils.dl_utils.collect_env` (Python, GCC, PyTorch and its
build, CUDA and GPUs, MMEngine, ...) plus what decides this project's
speed: the thread count, whether the compiled adder2d kernels serve the
device, the CPU kernel sets in use, the GPU backends and the command line.
"""
import json
import os
import os.path as osp
import platform
import sys
from typing import Any, Dict, Optional

import torch
from mmengine.utils.dl_utils import collect_env

from mmpkkd.version import __version__


def _plain(value: Any) -> Any:
    """A JSON value: numbers, strings, booleans, lists and dicts as they
    are, anything else (a numpy scalar) as its text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def environment(device: str = 'cpu',
                script: Optional[str] = None,
                **extra: Any) -> Dict[str, Any]:
    """The environment of a benchmark, as a JSON-ready dict.

    Args:
        device (str): ``'cpu'`` or ``'cuda'``, the device benchmarked.
        script (str, optional): The benchmark script (``__file__``); its
            path and ``sys.argv`` are recorded as ``command``.
        **extra: More entries (e.g. the timer used).

    Returns:
        dict: ``collect_env()`` entries, then ``mmpkkd``, ``device``,
        ``threads``, ``cpu``, ``native`` (compiled kernels serve
        ``device``), ``cpu_isa`` (kernel set of each CPU op, when
        compiled), ``gpu_backends`` (on CUDA), ``command`` and ``extra``.

    Example:
        >>> env = environment('cpu', __file__, timer='wall')
        >>> env['PyTorch'] == torch.__version__, env['cpu_isa']
        (True, {'adder2d': 'avx512', 'adder2d_int8': 'avx512'})
    """
    from mmpkkd.ops import (CPU_ISA_OPS, cuda_backends_available,
                            get_cpu_isa, native_available)
    info = {
        key: _plain(value)
        for key, value in collect_env().items()
        if key != 'numpy_random_seed'  # a seed, not the environment
    }
    info.update(
        mmpkkd=__version__,
        device=device,
        threads=torch.get_num_threads(),
        cpu=platform.processor() or platform.machine(),
        native=native_available(device))
    if native_available('cpu'):
        info['cpu_isa'] = {op: get_cpu_isa(op) for op in CPU_ISA_OPS}
    if device == 'cuda':
        info['gpu_backends'] = list(cuda_backends_available())
    if script is not None:
        info['command'] = ' '.join([osp.relpath(script)] + sys.argv[1:])
    info.update(_plain(extra))
    return info


def save_results(result: dict, path: Optional[str]) -> None:
    """Write a benchmark's results as JSON to ``path`` (if given)."""
    if not path:
        return
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(result, f, indent=2)
    print(f'results written to {path}')
