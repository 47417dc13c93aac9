"""mmpkkd.ops.adder2d_int8 / adder2d_int8_affine against an int64 oracle.

The oracle below shares no code with the kernels or with the library's
reference (which goes through unfold + float64): it pads with ``F.pad`` and
sums ``|x - w|`` tap by tap in int64.
"""
import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from mmpkkd.ops import (adder2d_int8, adder2d_int8_affine, cpu_isas_available,
                        get_cpu_isa, set_cpu_isa)
from mmpkkd.ops import int8 as int8_ops
from mmpkkd.ops._library import (ADDER2D_INT8_AFFINE_SCHEMA,
                                 ADDER2D_INT8_SCHEMA, NATIVE_INT8)


def oracle(x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1,
           pad_value=0):
    """-sum |x_pad - w| in int64, one kernel tap at a time."""
    x = F.pad(x.long(), (padding[1], padding[1], padding[0], padding[0]),
              value=pad_value)
    n, _, h, wd = x.shape
    cout, cpg, kh, kw = w.shape
    ho = (h - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    cog = cout // groups
    out = torch.zeros(n, cout, ho, wo, dtype=torch.long)
    for g in range(groups):
        xg = x[:, g * cpg:(g + 1) * cpg]
        for i in range(kh):
            for j in range(kw):
                r0, c0 = i * dilation[0], j * dilation[1]
                xs = xg[:, :, r0:r0 + stride[0] * (ho - 1) + 1:stride[0],
                        c0:c0 + stride[1] * (wo - 1) + 1:stride[1]]
                wk = w[g * cog:(g + 1) * cog, :, i, j].long()
                out[:, g * cog:(g + 1) * cog] += (
                    xs[:, None] - wk[None, :, :, None, None]).abs().sum(2)
    return -out


# (input shape, weight shape, stride, padding, dilation, groups)
CASES = [
    ((1, 16, 9, 7), (24, 16, 3, 3), (1, 1), (1, 1), (1, 1), 1),  # batch 1
    ((2, 5, 6, 6), (7, 5, 3, 3), (2, 2), (1, 1), (1, 1), 1),  # 5 channels
    ((3, 6, 11, 8), (4, 3, 3, 2), (2, 1), (2, 0), (2, 1), 2),  # mixed pairs
    ((1, 70, 5, 5), (33, 70, 1, 1), (1, 1), (0, 0), (1, 1), 1),  # 1x1, 70
    ((2, 8, 7, 7), (8, 1, 3, 3), (1, 1), (1, 1), (1, 1), 8),  # depthwise
    ((1, 3, 4, 4), (2, 3, 4, 4), (1, 1), (0, 0), (1, 1), 1),  # one output
    ((2, 12, 10, 10), (18, 4, 3, 3), (3, 3), (2, 2), (1, 1), 3),
    ((1, 130, 7, 7), (20, 130, 3, 3), (1, 1), (1, 1), (1, 1), 1),  # K sliced
    ((1, 800, 3, 3), (5, 800, 1, 1), (1, 1), (0, 0), (1, 1), 1),  # K split
]

needs_native = pytest.mark.skipif(
    not NATIVE_INT8, reason='mmpkkd._ext without the int8 kernels')


def isas():
    return cpu_isas_available('adder2d_int8') if NATIVE_INT8 else []


@pytest.fixture
def isa(request):
    """Force one kernel set for the test, restore 'auto' afterwards."""
    set_cpu_isa(request.param, op='adder2d_int8')
    yield request.param
    set_cpu_isa('auto', op='adder2d_int8')


def rand_int8(shape, gen):
    return torch.randint(-128, 128, shape, generator=gen, dtype=torch.int8)


@needs_native
@pytest.mark.parametrize('isa', isas(), indirect=True)
@pytest.mark.parametrize('case', CASES)
def test_exact_on_odd_shapes(isa, case):
    xs, ws, stride, padding, dilation, groups = case
    gen = torch.Generator().manual_seed(sum(xs) + sum(ws))
    x, w = rand_int8(xs, gen), rand_int8(ws, gen)
    for pad_value in (0, -128, 37):
        y = adder2d_int8(x, w, stride, padding, dilation, groups, pad_value)
        assert y.dtype == torch.int32
        assert torch.equal(
            y.long(), oracle(x, w, stride, padding, dilation, groups,
                             pad_value)), (isa, case, pad_value)


@needs_native
@pytest.mark.parametrize('isa', isas(), indirect=True)
def test_extremes_and_layouts(isa):
    # |(-128) - 127| = 255 everywhere: the largest sum per tap
    x = torch.full((2, 40, 6, 5), -128, dtype=torch.int8)
    w = torch.full((9, 40, 3, 3), 127, dtype=torch.int8)
    y = adder2d_int8(x, w, padding=1)
    assert torch.equal(y.long(), oracle(x, w, padding=(1, 1)))
    assert int(y.min()) == -255 * 40 * 9
    # channels-last and sliced (non-contiguous) inputs
    gen = torch.Generator().manual_seed(3)
    x = rand_int8((2, 24, 9, 9), gen)
    w = rand_int8((10, 24, 3, 3), gen)
    ref = oracle(x, w, padding=(1, 1))
    y_cl = adder2d_int8(x.to(memory_format=torch.channels_last), w,
                        padding=1)
    assert torch.equal(y_cl.long(), ref)
    xs = rand_int8((2, 48, 9, 9), gen)[:, ::2]
    assert torch.equal(
        adder2d_int8(xs, w, padding=1).long(), oracle(xs, w, padding=(1, 1)))


@needs_native
def test_same_result_with_one_and_two_threads():
    gen = torch.Generator().manual_seed(5)
    x, w = rand_int8((1, 32, 7, 7), gen), rand_int8((40, 32, 3, 3), gen)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        y1 = adder2d_int8(x, w, padding=1)
        torch.set_num_threads(2)
        y2 = adder2d_int8(x, w, padding=1)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(y1, y2)
    assert torch.equal(y1.long(), oracle(x, w, padding=(1, 1)))


def test_reference_fallback_is_exact():
    gen = torch.Generator().manual_seed(7)
    x, w = rand_int8((2, 6, 7, 6), gen), rand_int8((4, 3, 3, 3), gen)
    y = int8_ops.adder2d_int8_reference(x, w, 2, 1, 1, 2, pad_value=-5)
    assert torch.equal(
        y.long(), oracle(x, w, (2, 2), (1, 1), (1, 1), 2, pad_value=-5))


def test_quantize_rounds_half_to_even_and_clamps():
    x = torch.tensor([0.5, 1.5, 2.5, -0.5, -2.5, 1000.0, -1000.0, 0.49])
    q = int8_ops.quantize_per_tensor_int8(x, 1.0, 3)
    assert q.tolist() == [3, 5, 5, 3, 1, 127, -128, 3]


@needs_native
@pytest.mark.parametrize('isa', isas(), indirect=True)
def test_affine_matches_quantize_then_int8(isa):
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(2, 20, 9, 9, generator=gen) * 2
    # ties at the rounding boundary and saturated values
    x[0, 0, 0, :4] = torch.tensor([0.25, 0.75, 100.0, -100.0])
    w = rand_int8((12, 10, 3, 3), gen)
    alpha = torch.rand(12, generator=gen) + 0.5
    beta = torch.randn(12, generator=gen)
    inv_scale, zero_point = 2.0, -7
    y = adder2d_int8_affine(x, w, inv_scale, zero_point, alpha, beta, 1, 1,
                            1, 2)
    q = int8_ops.quantize_per_tensor_int8(x, inv_scale, zero_point)
    s = oracle(q, w, padding=(1, 1), groups=2, pad_value=zero_point)
    ref = s.double() * alpha.double().view(1, -1, 1, 1) + beta.double().view(
        1, -1, 1, 1)
    torch.testing.assert_close(y.double(), ref, rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize('bad, match', [
    (lambda x, w: adder2d_int8(x.float(), w), 'input must be torch.int8'),
    (lambda x, w: adder2d_int8(x, w.float()), 'weight must be torch.int8'),
    (lambda x, w: adder2d_int8(x, w[:, :2]), 'channel mismatch'),
    (lambda x, w: adder2d_int8(x, w, groups=3), 'groups=3 must divide'),
    (lambda x, w: adder2d_int8(x, w, pad_value=200), 'pad_value'),
    (lambda x, w: adder2d_int8(x[0], w), 'must be 4-D'),
    (lambda x, w: adder2d_int8_affine(x, w, 1.0, 0, torch.ones(5),
                                      torch.zeros(5)),
     'input must be torch.float32'),
])
def test_errors_say_what_to_fix(bad, match):
    x = torch.zeros(1, 4, 5, 5, dtype=torch.int8)
    w = torch.zeros(5, 4, 3, 3, dtype=torch.int8)
    with pytest.raises(ValueError, match=match):
        bad(x, w)


@needs_native
def test_isa_control():
    supported = cpu_isas_available('adder2d_int8')
    assert supported[-1] == 'generic'
    assert get_cpu_isa('adder2d_int8') in supported
    with pytest.raises(ValueError, match='unknown CPU ISA'):
        set_cpu_isa('sse9', op='adder2d_int8')
    with pytest.raises(ValueError, match='one of'):
        set_cpu_isa('generic', op='adder2d_fp16')
    # one switch per op: forcing the int8 kernels leaves the float ones
    float_isa = get_cpu_isa('adder2d')
    try:
        assert set_cpu_isa('generic', op='adder2d_int8') == 'generic'
        assert get_cpu_isa('adder2d') == float_isa
    finally:
        assert set_cpu_isa('auto', op='adder2d_int8') == supported[0]


@needs_native
def test_native_schemas_match_the_python_mirror():
    """The schemas _library.py defines when the extension is missing are
    the native ones."""
    for name, schema in (('adder2d_int8', ADDER2D_INT8_SCHEMA),
                         ('adder2d_int8_affine', ADDER2D_INT8_AFFINE_SCHEMA)):
        native = str(getattr(torch.ops.mmpkkd, name).default._schema)
        assert native == f'mmpkkd::{schema}'


def test_affine_reference_matches_quantize_then_oracle():
    gen = torch.Generator().manual_seed(12)
    x = torch.randn(2, 6, 7, 7, generator=gen)
    w = rand_int8((4, 3, 3, 3), gen)
    alpha, beta = torch.rand(4, generator=gen), torch.randn(4, generator=gen)
    y = int8_ops.adder2d_int8_affine_reference(x, w, 4.0, 5, alpha, beta,
                                               padding=1, groups=2)
    q = int8_ops.quantize_per_tensor_int8(x, 4.0, 5)
    s = oracle(q, w, padding=(1, 1), groups=2, pad_value=5)
    torch.testing.assert_close(
        y.double(), s.double() * alpha.double().view(1, -1, 1, 1) +
        beta.double().view(1, -1, 1, 1), rtol=1e-6, atol=1e-4)


def test_ops_trace_with_fake_tensors():
    """The fake kernels give the shapes and dtypes without computing."""
    gen = torch.Generator().manual_seed(13)
    x, w = rand_int8((2, 6, 9, 8), gen), rand_int8((4, 3, 3, 2), gen)
    xf = torch.randn(2, 6, 9, 8, generator=gen)
    a, b = torch.rand(4, generator=gen), torch.randn(4, generator=gen)

    def both(x, xf, w, a, b):
        return (adder2d_int8(x, w, 2, (2, 0), (2, 1), 2, -3),
                adder2d_int8_affine(xf, w, 3.0, -3, a, b, 2, (2, 0), (2, 1),
                                    2))

    graph = torch.compile(both, fullgraph=True, backend='eager')
    got, expected = graph(x, xf, w, a, b), both(x, xf, w, a, b)
    for g, e in zip(got, expected):
        assert g.shape == e.shape and g.dtype == e.dtype
        assert torch.equal(g, e)
    from torch._subclasses.fake_tensor import FakeTensorMode
    with FakeTensorMode() as mode:
        fakes = [mode.from_tensor(t) for t in (x, xf, w, a, b)]
        out = both(*fakes)
    assert [(o.shape, o.dtype) for o in out] == [
        (e.shape, e.dtype) for e in expected]


@pytest.mark.parametrize('op', ['adder2d_int8', 'adder2d_int8_affine'])
def test_opcheck(op):
    """Schema, fake kernel and dispatch agree (torch.library.opcheck)."""
    gen = torch.Generator().manual_seed(14)
    w = rand_int8((4, 3, 3, 2), gen)
    geometry = ([2, 1], [2, 0], [2, 1], 2)
    if op == 'adder2d_int8':
        args = (rand_int8((2, 6, 9, 8), gen), w, *geometry, -3)
    else:
        args = (torch.randn(2, 6, 9, 8, generator=gen), w, 3.0, -3,
                torch.rand(4, generator=gen), torch.randn(4, generator=gen),
                *geometry)
    torch.library.opcheck(getattr(torch.ops.mmpkkd, op).default, args)


_FALLBACK_SCRIPT = r"""
import json, sys, warnings
sys.modules['mmpkkd._ext'] = None  # as if the extension were not built
import torch
from mmpkkd.ops import Adder2dFallbackWarning
from mmpkkd.ops import int8
gen = torch.Generator().manual_seed(0)
x = torch.randint(-128, 128, (2, 4, 6, 6), generator=gen, dtype=torch.int8)
w = torch.randint(-128, 128, (3, 4, 3, 3), generator=gen, dtype=torch.int8)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    ys = [int8.adder2d_int8(x, w, padding=1, pad_value=-2) for _ in '12']
messages = [str(c.message) for c in caught
            if issubclass(c.category, Adder2dFallbackWarning)]
expected = int8.adder2d_int8_reference(x, w, padding=1, pad_value=-2)
fn = torch.compile(lambda x, w: int8.adder2d_int8(x, w, padding=1),
                   fullgraph=True, backend='eager')
print(json.dumps({
    'warnings': messages,
    'equal': all(torch.equal(y, expected) for y in ys),
    'compiled': torch.equal(fn(x, w), int8.adder2d_int8_reference(
        x, w, padding=1)),
}))
"""


def test_fallback_without_extension():
    """Without mmpkkd._ext the same op runs the reference, warning once."""
    proc = subprocess.run([sys.executable, '-c', _FALLBACK_SCRIPT],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(result['warnings']) == 1
    assert 'pip install --no-build-isolation -e .' in result['warnings'][0]
    assert result['equal'] and result['compiled']
