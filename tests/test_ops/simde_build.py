"""Test-only build of the CPU ops with AVX-512 emulated by SIMDe.

The AVX-512 kernels of ``adder2d`` and ``adder2d_int8`` only run on CPUs
with AVX-512, which CI machines may lack. This module compiles the same C++
sources a second time (JIT, :func:`torch.utils.cpp_extension.load`) for an
AVX2 target (``-mavx2 -mfma``, no ``-mavx512*``) against SIMDe, a
header-only library whose ``_mm512_*`` intrinsics are software built from
AVX2 (see ``mmpkkd/ops/csrc/common/cpu_simd.h``). In that build the
``avx512`` kernel sets are available on every CPU and are the default.

Every symbol and op of the build is renamed into the namespace
``mmpkkd_simde`` (``-Dmmpkkd=mmpkkd_simde``), so it loads beside the real
extension: ``torch.ops.mmpkkd_simde.adder2d``, ``adder2d_backward``,
``adder2d_int8``, ``adder2d_int8_affine``, the kernel-set switches
``adder2d_cpu_isa``, ``adder2d_int8_cpu_isa`` (and their
``*_supported_cpu_isas``), registered by the real ``register_ops.cpp``, and
``build_info``. Nothing of it is installed.

SIMDe headers are searched in this order:

1. ``$MMPKKD_SIMDE_INCLUDE`` (a folder holding ``simde/x86/avx512.h``);
2. the PyPI package ``simde-py`` (what ``.ci/run`` installs);
3. the system include folders (Debian/Ubuntu ``libsimde-dev``).

Run ``python tests/test_ops/simde_build.py`` to build it and print its facts.
"""
import glob
import os
import os.path as osp
import time
from typing import Dict, List, Optional

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CSRC = osp.join(REPO, 'mmpkkd', 'ops', 'csrc')
NAMESPACE = 'mmpkkd_simde'
EXTENSION_NAME = 'mmpkkd_simde_ops'
BUILD_DIR = osp.join(REPO, 'build', 'simde_ops')
STALE_LOCK_SECONDS = 600
SIMDE_HEADER = osp.join('simde', 'x86', 'avx512.h')
SYSTEM_INCLUDE_DIRS = ['/usr/local/include', '/usr/include']
INSTALL_HINT = ('pip install "simde-py==0.8.2.post1" (or: apt-get install '
                'libsimde-dev, or set MMPKKD_SIMDE_INCLUDE)')

_library: Optional[str] = None  # path of the loaded build


def simde_include_dir() -> Optional[str]:
    """The folder that holds ``simde/x86/avx512.h``, or None if not found."""
    candidates = []
    if os.environ.get('MMPKKD_SIMDE_INCLUDE'):
        candidates.append(os.environ['MMPKKD_SIMDE_INCLUDE'])
    try:
        import simde_py
        candidates.append(simde_py.get_include())
    except ImportError:
        pass
    candidates += SYSTEM_INCLUDE_DIRS
    for folder in candidates:
        if osp.isfile(osp.join(folder, SIMDE_HEADER)):
            return folder
    return None


def sources() -> List[str]:
    """The C++ files of the build.

    The argument checks and dispatch of the float op, every CPU source
    (float and int8 drivers and kernels), the real extension's
    ``register_ops.cpp`` (every op and switch; its CUDA part is not
    compiled here) and ``tests/test_ops/simde/simde_ops.cpp``, which reports
    how the build was made. Not ``pybind.cpp``: this build is no Python module.
    """
    return ([osp.join(CSRC, 'adder2d.cpp'),
             osp.join(CSRC, 'register_ops.cpp')] +
            sorted(glob.glob(osp.join(CSRC, 'cpu', '*.cpp'))) +
            [osp.join(REPO, 'tests', 'test_ops', 'simde', 'simde_ops.cpp')])


def compile_flags(include_dir: str) -> List[str]:
    """Compiler flags: an AVX2 target, emulated AVX-512, renamed namespace."""
    flags = [
        '-O2', '-std=c++20', '-fopenmp', '-mavx2', '-mfma', '-Wno-psabi',
        '-DMMPKKD_EMULATE_AVX512', f'-Dmmpkkd={NAMESPACE}'
    ]
    # (naming a default folder again would reorder the C++ headers' search)
    if include_dir not in SYSTEM_INCLUDE_DIRS:
        flags.append(f'-isystem{include_dir}')
    return flags


def build(verbose: bool = False) -> str:
    """Compile (or reuse) the build and load its ops, once per process.

    The build folder is ``build/simde_ops`` in the checkout (ignored by
    git); ninja only recompiles what changed. A lock left there by a build
    that was killed (older than ``STALE_LOCK_SECONDS``) is removed, as torch
    would otherwise wait for it forever.

    Args:
        verbose (bool): Print the compiler's progress. Defaults to False.

    Returns:
        str: Path of the loaded shared library.

    Raises:
        FileNotFoundError: No SIMDe headers were found.
    """
    global _library
    if _library is not None:
        return _library
    include_dir = simde_include_dir()
    if include_dir is None:
        raise FileNotFoundError(f'SIMDe headers ({SIMDE_HEADER}) not found; '
                                f'install them with {INSTALL_HINT}')
    os.makedirs(BUILD_DIR, exist_ok=True)
    lock = osp.join(BUILD_DIR, 'lock')
    if (osp.exists(lock)
            and time.time() - osp.getmtime(lock) > STALE_LOCK_SECONDS):
        os.remove(lock)
    from torch.utils.cpp_extension import load
    _library = load(
        name=EXTENSION_NAME,
        build_directory=BUILD_DIR,
        sources=sources(),
        extra_cflags=compile_flags(include_dir),
        extra_include_paths=[osp.join(CSRC, 'common')],
        extra_ldflags=['-fopenmp'],
        is_python_module=False,
        verbose=verbose)
    return _library


def build_info() -> Dict[str, str]:
    """Facts the loaded build reports about itself, e.g.
    ``{'avx512_emulated': '1', 'simde_version': '0.8.2', ...}``."""
    ops = getattr(torch.ops, NAMESPACE)
    return dict(item.split('=', 1) for item in ops.build_info())


if __name__ == '__main__':
    print(build(verbose=True))
    for key, value in build_info().items():
        print(f'{key}: {value}')
