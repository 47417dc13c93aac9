"""Install mmpkkd and build its native adder op (``mmpkkd._ext``).

The extension is compiled against the installed torch, so install with
``pip install --no-build-isolation -e .`` (an isolated build environment would
fetch a different torch). The CUDA C++ kernels are built only when
requested with ``MMPKKD_WITH_CUDA=1`` (or ``FORCE_CUDA=1``); by default only
the CPU kernels are built, since GPUs run the Triton kernels
(docs/user_guides/gpu.md); set ``MMPKKD_WITH_OPS=0`` to skip the native op entirely (the pure-PyTorch
fallback is then used, with a warning). ``TORCH_CUDA_ARCH_LIST`` defaults to
``8.0;9.0+PTX`` (A100, H100, plus PTX that newer GPUs JIT-compile) so a
build does not target every GPU ever made.
"""
import glob
import os
import os.path as osp

from setuptools import find_packages, setup

ROOT = osp.dirname(osp.abspath(__file__))
DEFAULT_CUDA_ARCHS = '8.0;9.0+PTX'
# torch guesses CUDA_HOME from `nvcc` on PATH when it is unset, which finds a
# /usr/local/bin/nvcc link and then the wrong include directory; prefer the
# toolkit's own folder. Must happen before torch.utils.cpp_extension loads.
if 'CUDA_HOME' not in os.environ and osp.isdir('/usr/local/cuda'):
    os.environ['CUDA_HOME'] = '/usr/local/cuda'


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(ROOT, 'mmpkkd', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def read_requirements(name: str) -> list:
    with open(osp.join(ROOT, 'requirements', name)) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line and not line.startswith('-')]


def want_cuda() -> bool:
    """Build the CUDA C++ kernels? Opt-in: they are an alternative to the
    default Triton kernels, and compiling them takes minutes."""
    import torch
    from torch.utils.cpp_extension import CUDA_HOME
    if os.getenv('FORCE_CUDA', '0') == '1':
        return True
    if os.getenv('MMPKKD_WITH_CUDA', '0') != '1':
        return False
    if CUDA_HOME is None or torch.version.cuda is None:
        missing = ('no CUDA toolkit was found (set CUDA_HOME)'
                   if CUDA_HOME is None else 'torch is not a CUDA build')
        raise RuntimeError('MMPKKD_WITH_CUDA=1 asks for the CUDA C++ '
                           f'kernels, but {missing}')
    return True


def make_extensions() -> tuple:
    if os.getenv('MMPKKD_WITH_OPS', '1') == '0':
        return [], {}
    from torch.utils.cpp_extension import (BuildExtension, CppExtension,
                                           CUDAExtension)
    csrc = osp.join('mmpkkd', 'ops', 'csrc')
    sources = sorted(glob.glob(osp.join(csrc, '*.cpp')) +
                     glob.glob(osp.join(csrc, 'cpu', '*.cpp')))
    include_dirs = [osp.join(ROOT, csrc, 'common')]
    cxx_flags = ['-O3', '-fopenmp', '-std=c++20']
    extra_link_args = ['-fopenmp']
    if want_cuda():
        os.environ.setdefault('TORCH_CUDA_ARCH_LIST', DEFAULT_CUDA_ARCHS)
        sources += sorted(glob.glob(osp.join(csrc, 'cuda', '*.cu')))
        ext = CUDAExtension(
            name='mmpkkd._ext',
            sources=sources,
            include_dirs=include_dirs,
            define_macros=[('MMPKKD_WITH_CUDA', None)],
            extra_compile_args={
                'cxx': cxx_flags,
                'nvcc': ['-O3', '--use_fast_math', '-std=c++20'],
            },
            extra_link_args=extra_link_args)
    else:
        ext = CppExtension(
            name='mmpkkd._ext',
            sources=sources,
            include_dirs=include_dirs,
            extra_compile_args={'cxx': cxx_flags},
            extra_link_args=extra_link_args)
    return [ext], {'build_ext': BuildExtension}


ext_modules, cmdclass = make_extensions()

setup(
    name='mmpkkd',
    version=read_version(),
    description='Adder neural networks and Progressive Kernel-based Knowledge '
    'Distillation (PKKD) on OpenMMLab',
    long_description=open(osp.join(ROOT, 'README.md')).read()
    if osp.exists(osp.join(ROOT, 'README.md')) else '',
    long_description_content_type='text/markdown',
    license='Apache-2.0',  # SPDX expression; the text is in LICENSE
    python_requires='>=3.9',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    include_package_data=True,
    install_requires=read_requirements('runtime.txt'),
    extras_require={
        'tests': read_requirements('tests.txt') +
        read_requirements('deploy.txt'),
        'deploy': read_requirements('deploy.txt'),
        'optional': read_requirements('optional.txt'),
    },
    ext_modules=ext_modules,
    cmdclass=cmdclass,
    zip_safe=False,
)
