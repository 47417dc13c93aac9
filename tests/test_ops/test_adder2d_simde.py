"""The AVX-512 kernels, run on any x86-64 CPU through SIMDe emulation.

``tests/test_ops/simde_build.py`` compiles the float and int8 CPU ops a
second time for an AVX2 target, with SIMDe's software ``_mm512_*`` in place of the
AVX-512 instructions (``torch.ops.mmpkkd_simde``). These tests check that
this build really runs the AVX-512 kernel sets (not AVX2 or generic code)
and hold it to the same oracles and shapes as the native kernels in
``test_adder2d.py`` (float64 reference) and ``test_int8.py`` (int64
oracle). On a CPU with AVX-512 the emulated and native AVX-512 kernels are
also compared with each other.

Without SIMDe headers, ``objdump`` or an x86-64 CPU with AVX2 and FMA the
tests skip, and fail instead when ``MMPKKD_REQUIRE_SIMDE`` is set
(``.ci/run`` sets it). Only the comparison with native AVX-512 kernels
depends on the machine: it skips (with its reason) on CPUs without
AVX-512, CI's included.
"""
import os
import platform
import re
import shutil
import subprocess

import pytest
import torch

import simde_build
from mmpkkd.ops import (adder2d, adder2d_reference, native_available,
                        set_cpu_isa)
from mmpkkd.ops._args import check_adder2d_args
from mmpkkd.ops import int8 as int8_ops
from test_int8 import CASES as INT8_CASES
from test_int8 import oracle, rand_int8
from test_adder2d import COVERAGE, SHAPES, _assert_close, _ids, _make



def _cpu_flags() -> set:
    try:
        with open('/proc/cpuinfo') as f:
            return set(f.read().split())
    except OSError:
        return set()


CPU_FLAGS = _cpu_flags()


def skip_unless_required(reason: str) -> None:
    """Skip the test, or fail it where ``MMPKKD_REQUIRE_SIMDE`` is set."""
    if os.environ.get('MMPKKD_REQUIRE_SIMDE'):
        pytest.fail(f'{reason} (MMPKKD_REQUIRE_SIMDE is set)')
    pytest.skip(reason)


@pytest.fixture(scope='module')
def ops():
    """``torch.ops.mmpkkd_simde``, built on first use (about 40 s)."""
    # the emulation is built from AVX2 + FMA instructions
    if (platform.machine().lower() not in ('x86_64', 'amd64')
            or not {'avx2', 'fma'} <= CPU_FLAGS):
        skip_unless_required('the emulated AVX-512 build needs an x86-64 '
                             'CPU with AVX2 and FMA')
    try:
        simde_build.build()
    except FileNotFoundError as err:
        skip_unless_required(str(err))
    return getattr(torch.ops, simde_build.NAMESPACE)


@pytest.fixture
def avx512(ops):
    """The emulated ops with both AVX-512 kernel sets forced."""
    assert ops.adder2d_cpu_isa('avx512') == 'avx512'
    assert ops.adder2d_int8_cpu_isa('avx512') == 'avx512'
    yield ops
    ops.adder2d_cpu_isa('auto')
    ops.adder2d_int8_cpu_isa('auto')


# ---------------------------------------------------- what the build runs


def test_build_is_avx2_with_emulated_avx512(ops):
    info = simde_build.build_info()
    assert info['avx512_emulated'] == '1'
    assert info['target_avx512f'] == '0'  # compiled without -mavx512*
    assert info['simde_avx512_native'] == '0'  # SIMDe's software path
    assert info['simde_avx2_native'] == '1'
    # AVX-512 is the default kernel set of both ops, whatever this CPU has
    assert ops.adder2d_cpu_isa('') == 'avx512'
    assert ops.adder2d_int8_cpu_isa('') == 'avx512'
    assert ops.adder2d_supported_cpu_isas()[0] == 'avx512'
    assert ops.adder2d_int8_supported_cpu_isas()[0] == 'avx512'


def test_build_has_no_avx512_instructions(ops):
    # so the AVX-512 kernel sets cannot be running real AVX-512 code
    objdump = shutil.which('objdump')
    if objdump is None:
        skip_unless_required('objdump (binutils) not found')
    library = simde_build.build()
    text = subprocess.run([objdump, '-d', '--no-show-raw-insn', library],
                          capture_output=True, text=True, check=True).stdout
    assert '%ymm' in text  # the disassembly is readable and has AVX2
    # zmm, mask and upper-16 vector registers exist only with AVX-512
    avx512_only = re.compile(r'%(zmm\d+|k[0-7]\b|[xy]mm(1[6-9]|2\d|3[01]))')
    found = avx512_only.search(text)
    assert found is None, f'{found and found.group(0)} in {library}'


def test_schemas_match_the_real_ops(ops):
    for name in ('adder2d', 'adder2d_backward', 'adder2d_int8',
                 'adder2d_int8_affine', 'adder2d_cpu_isa',
                 'adder2d_int8_cpu_isa'):
        emulated = str(getattr(ops, name).default._schema)
        real = str(getattr(torch.ops.mmpkkd, name).default._schema)
        assert emulated.replace(f'{simde_build.NAMESPACE}::',
                                'mmpkkd::') == real


# ------------------------------------------------------- float adder2d


def _emulated(ops, x, w, b, kw, grad_out, mask=(True, True)):
    """Forward and backward of the emulated op (float32); returns
    (y, dx, dw) as float64, an entry not asked for by ``mask`` None."""
    geo = check_adder2d_args(x, w, b, kw['stride'], kw['padding'],
                             kw['dilation'], kw['groups'])
    args = (list(geo.stride), list(geo.padding), list(geo.dilation),
            geo.groups)
    x32, w32 = x.float(), w.float()
    b32 = b.float() if b is not None else None
    y = ops.adder2d(x32, w32, b32, *args)
    dx, dw = ops.adder2d_backward(grad_out.float(), x32, w32, *args,
                                  list(mask))
    return (y.double(), dx.double() if mask[0] else None,
            dw.double() if mask[1] else None)


def _reference(x, w, b, kw, grad_out):
    """(y, dx, dw) of the float64 reference."""
    leaves = [t.clone().requires_grad_() for t in (x, w)]
    y = adder2d_reference(*leaves, b, **kw)
    y.backward(grad_out)
    return y.detach(), leaves[0].grad, leaves[1].grad


def _grad_out(x, w, b, kw):
    shape = adder2d_reference(x, w, b, **kw).shape
    return torch.randn(shape, generator=torch.Generator().manual_seed(1),
                       dtype=torch.float64)


@pytest.mark.parametrize('shape', SHAPES + COVERAGE, ids=_ids)
def test_float_avx512_matches_reference(avx512, shape):
    # float32 with the tolerance of the native float32 tests (float64 runs
    # the generic kernels, so only float32 reaches the AVX-512 code)
    x, w, b, kw = _make(shape)
    gy = _grad_out(x, w, b, kw)
    expected = _reference(x, w, b, kw, gy)
    actual = _emulated(avx512, x, w, b, kw, gy)
    for name, a, e in zip(('y', 'dx', 'dw'), actual, expected):
        _assert_close(a, e, 2e-5, f'emulated avx512 float32 {name}')


def test_float_avx512_layouts_threads_and_partial_grads(avx512):
    x, w, b, kw = _make((3, 10, 9, 9, 12, 3, 2, 1, 1, 1))
    gy = _grad_out(x, w, b, kw)
    expected = _reference(x, w, b, kw, gy)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = _emulated(avx512, x, w, b, kw, gy)
    finally:
        torch.set_num_threads(threads)
    x_cl = x.to(memory_format=torch.channels_last)
    for mask in ((True, False), (False, True)):
        partial = _emulated(avx512, x_cl, w, b, kw, gy, mask)
        for name, a, e, wanted in zip(('y', 'dx', 'dw'), partial, expected,
                                      (True, ) + mask):
            if wanted:
                _assert_close(a, e, 2e-5, f'channels_last {mask} {name}')
            else:
                assert a is None
    for name, a, e in zip(('y', 'dx', 'dw'), single, expected):
        _assert_close(a, e, 2e-5, f'one thread {name}')


@pytest.mark.skipif(not {'avx512f', 'avx512bw'} <= CPU_FLAGS,
                    reason='no native AVX-512')
@pytest.mark.skipif(not native_available(), reason='mmpkkd._ext not built')
@pytest.mark.parametrize('shape', SHAPES[:4] + COVERAGE[:10:3], ids=_ids)
def test_float_emulated_equals_native_avx512(avx512, shape):
    # same kernels, same operation order: the forward and dX agree to the
    # bit (dW goes through BLAS in both builds, not through the kernels)
    x, w, b, kw = _make(shape, dtype=torch.float32)
    gy = _grad_out(x.double(), w.double(), b.double(), kw).float()
    emulated = _emulated(avx512, x, w, b, kw, gy)
    set_cpu_isa('avx512')
    try:
        leaves = [t.clone().requires_grad_() for t in (x, w)]
        y = adder2d(*leaves, b, **kw)
        y.backward(gy)
    finally:
        set_cpu_isa('auto')
    assert torch.equal(emulated[0], y.detach().double())
    assert torch.equal(emulated[1], leaves[0].grad.double())
    _assert_close(emulated[2], leaves[1].grad.double(), 1e-6, 'dw')


# ---------------------------------------------------------- int8 adder2d


@pytest.mark.parametrize('case', INT8_CASES)
def test_int8_avx512_exact_on_odd_shapes(avx512, case):
    xs, ws, stride, padding, dilation, groups = case
    gen = torch.Generator().manual_seed(sum(xs) + sum(ws))
    x, w = rand_int8(xs, gen), rand_int8(ws, gen)
    for pad_value in (0, -128, 37):
        y = avx512.adder2d_int8(x, w, stride, padding, dilation, groups,
                                pad_value)
        assert y.dtype == torch.int32
        assert torch.equal(
            y.long(), oracle(x, w, stride, padding, dilation, groups,
                             pad_value)), (case, pad_value)


def test_int8_avx512_extremes_and_layouts(avx512):
    # |(-128) - 127| = 255 in every term: the largest sums
    x = torch.full((2, 40, 6, 5), -128, dtype=torch.int8)
    w = torch.full((9, 40, 3, 3), 127, dtype=torch.int8)
    y = avx512.adder2d_int8(x, w, padding=[1, 1])
    assert torch.equal(y.long(), oracle(x, w, padding=(1, 1)))
    gen = torch.Generator().manual_seed(3)
    w = rand_int8((10, 24, 3, 3), gen)
    for x in (rand_int8((2, 24, 9, 9), gen).to(
            memory_format=torch.channels_last),
              rand_int8((2, 48, 9, 9), gen)[:, ::2]):
        y = avx512.adder2d_int8(x, w, padding=[1, 1])
        assert torch.equal(y.long(), oracle(x, w, padding=(1, 1)))


def test_int8_avx512_affine_matches_quantize_then_oracle(avx512):
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(2, 20, 9, 9, generator=gen) * 2
    x[0, 0, 0, :4] = torch.tensor([0.25, 0.75, 100.0, -100.0])
    w = rand_int8((12, 10, 3, 3), gen)
    alpha = torch.rand(12, generator=gen) + 0.5
    beta = torch.randn(12, generator=gen)
    inv_scale, zero_point = 2.0, -7
    y = avx512.adder2d_int8_affine(x, w, inv_scale, zero_point, alpha, beta,
                                   [1, 1], [1, 1], [1, 1], 2)
    q = int8_ops.quantize_per_tensor_int8(x, inv_scale, zero_point)
    s = oracle(q, w, padding=(1, 1), groups=2, pad_value=zero_point)
    ref = (s.double() * alpha.double().view(1, -1, 1, 1) +
           beta.double().view(1, -1, 1, 1))
    torch.testing.assert_close(y.double(), ref, rtol=1e-6, atol=1e-4)
