"""Tests of mmpkkd.ops.adder2d: native kernels vs the float64 reference.

The oracle chain: a hand-computed case checks the pure-PyTorch reference;
the reference is also checked against the independent re-implementation of
the original AdderNet algorithm; the native kernels (every CPU ISA this
machine supports) are then checked against the reference in float64.
"""
import importlib
import os
import warnings

import pytest
import torch

from mmpkkd.ops import (Adder2dFallbackWarning, adder2d, adder2d_reference,
                        adder2d_unfold_original, native_available)

# (mmpkkd.ops.adder2d the attribute is the function; these are the modules)
adder2d_module = importlib.import_module('mmpkkd.ops.adder2d')
reference_module = importlib.import_module('mmpkkd.ops.reference')

NATIVE = native_available()
needs_native = pytest.mark.skipif(
    not NATIVE, reason='mmpkkd._ext not built '
    '(pip install --no-build-isolation -e .)')


def _isas():
    if not NATIVE:
        return ['none']
    from mmpkkd import _ext
    found = []
    for name in ('avx512', 'avx2', 'generic'):
        try:
            _ext.set_cpu_isa(name)
            found.append(name)
        except ValueError:
            pass
    _ext.set_cpu_isa('auto')
    return found


@pytest.fixture
def isa(request):
    from mmpkkd import _ext
    _ext.set_cpu_isa(request.param)
    yield request.param
    _ext.set_cpu_isa('auto')


# (N, C_in, H, W, C_out, kernel, stride, padding, dilation, groups)
SHAPES = [
    (2, 3, 7, 9, 5, 3, 1, 1, 1, 1),
    (1, 16, 10, 13, 20, 3, 2, 2, 2, 1),  # batch 1, stride/pad/dilation 2
    (3, 8, 6, 6, 8, 5, 1, 2, 1, 2),  # groups 2, 5x5
    (2, 6, 9, 7, 6, 3, 1, 1, 1, 6),  # depthwise
    (2, 35, 17, 11, 37, 1, 2, 0, 1, 1),  # 1x1 stride 2, odd channels
    (1, 4, 12, 12, 9, 7, 1, 3, 1, 1),  # 7x7
    (2, 40, 16, 16, 24, 3, 1, 1, 1, 1),  # K=360 spans K slices; 16x16
    (2, 12, 11, 8, 18, (3, 1), (2, 1), (1, 0), (1, 2), 3),  # pairs
    (1, 3, 5, 5, 2, 3, 3, 2, 1, 1),  # stride 3, mostly padding
    (5, 9, 4, 20, 70, 2, 1, 0, 1, 1),  # even kernel, >64 out channels
]


def _ids(shape):
    return 'x'.join(str(v).replace(' ', '') for v in shape)


def _make(shape, dtype=torch.float64, seed=0):
    n, c, h, w, co, k, s, p, d, g = shape
    k = (k, k) if isinstance(k, int) else k
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=gen, dtype=dtype)
    wt = torch.randn(co, c // g, *k, generator=gen, dtype=dtype)
    b = torch.randn(co, generator=gen, dtype=dtype)
    return x, wt, b, dict(stride=s, padding=p, dilation=d, groups=g)


def _run(fn, x, w, b, kwargs, grad_out=None, dtype=None):
    """Forward + backward; returns (y, dx, dw, db) in float64."""
    dtype = dtype or x.dtype
    x = x.detach().to(dtype).requires_grad_()
    w = w.detach().to(dtype).requires_grad_()
    b = b.detach().to(dtype).requires_grad_() if b is not None else None
    y = fn(x, w, b, **kwargs)
    if grad_out is None:
        grad_out = torch.randn(
            y.shape, generator=torch.Generator().manual_seed(1),
            dtype=torch.float64)
    y.backward(grad_out.to(dtype))
    return [t.double() if t is not None else None
            for t in (y.detach(), x.grad, w.grad,
                      b.grad if b is not None else None)]


def _assert_close(actual, expected, rel, what):
    scale = expected.abs().max().item() + 1e-12
    err = (actual - expected).abs().max().item()
    assert err <= rel * scale, f'{what}: max err {err:.3g} > {rel:g} * {scale:.3g}'


# ------------------------------------------------------------- reference


def test_reference_hand_computed():
    # 1x2 kernel, padding (0, 1): the padded row is [0, x0, x1, 0].
    x = torch.tensor([[[[1.0, -2.0], [0.25, 3.0]]]], dtype=torch.float64)
    w = torch.tensor([[[[0.5, -1.0]]]], dtype=torch.float64)
    b = torch.tensor([0.1], dtype=torch.float64)
    gy = torch.tensor([[[[1.0, 2.0, 0.0], [0.0, 1.0, -1.0]]]],
                      dtype=torch.float64)
    y, dx, dw, db = _run(adder2d_reference, x, w, b,
                         dict(padding=(0, 1)), grad_out=gy)
    # e.g. Y[0,0] = -(|0 - 0.5| + |1 + 1|) + 0.1 (first tap is padding)
    expected_y = torch.tensor([[-2.5, -1.5, -3.5], [-1.75, -4.25, -3.5]],
                              dtype=torch.float64) + 0.1
    torch.testing.assert_close(y[0, 0], expected_y)
    # dW = sum (x_tap - w) * dY, padded taps included (x_tap = 0)
    torch.testing.assert_close(dw.flatten(),
                               torch.tensor([-2.25, 3.0],
                                            dtype=torch.float64))
    # dX = sum HardTanh(w - x) * dY over real taps; e.g. x=1 gets
    # HT(0.5 - 1) * 2 + HT(-1 - 1) * 1 = -1 + (-1, clipped from -2) = -2
    torch.testing.assert_close(
        dx[0, 0], torch.tensor([[-2.0, 2.0], [0.25, 0.0]],
                               dtype=torch.float64))
    torch.testing.assert_close(db, torch.tensor([3.0], dtype=torch.float64))


@pytest.mark.parametrize('shape', [
    (2, 3, 6, 6, 4, 3, 1, 1, 1, 1),
    (3, 5, 7, 5, 6, 3, 2, 0, 1, 1),
    (1, 2, 5, 5, 3, 1, 1, 0, 1, 1),
    (2, 4, 9, 9, 5, 5, 2, 2, 1, 1),
], ids=_ids)
def test_reference_matches_unfold_original(shape):
    x, w, _, kw = _make(shape)

    def original(x, w, b, stride, padding, dilation, groups):
        return adder2d_unfold_original(x, w, stride, padding)

    ref = _run(adder2d_reference, x, w, None, kw)
    orig = _run(original, x, w, None, kw)
    for name, a, e in zip(('y', 'dx', 'dw'), ref[:3], orig[:3]):
        _assert_close(a, e, 1e-12, name)


def test_unfold_original_adaptive_lr_scaling():
    x, w, _, _ = _make((2, 3, 5, 5, 4, 3, 1, 1, 1, 1))
    w = w.requires_grad_()
    adder2d_unfold_original(x, w, 1, 1, adaptive_lr=True).sum().backward()
    expected = 0.2 * w.numel()**0.5
    assert abs(w.grad.norm().item() - expected) < 1e-9 * expected


def test_reference_chunking_is_exact(monkeypatch):
    shape = (3, 6, 8, 7, 10, 3, 1, 1, 1, 2)
    x, w, b, kw = _make(shape)
    whole = _run(adder2d_reference, x, w, b, kw)
    # tiny budget: every chunk loop (batch, channels, positions) iterates
    monkeypatch.setattr(reference_module, 'CHUNK_BYTES', 2048)
    chunked = _run(adder2d_reference, x, w, b, kw)
    for name, a, e in zip(('y', 'dx', 'dw', 'db'), chunked, whole):
        _assert_close(a, e, 1e-13, name)


# ---------------------------------------------------------------- native


@needs_native
@pytest.mark.parametrize('isa', _isas(), indirect=True)
@pytest.mark.parametrize('shape', SHAPES, ids=_ids)
def test_native_matches_reference(shape, isa):
    x, w, b, kw = _make(shape)
    ref = _run(adder2d_reference, x, w, b, kw)
    names = ('y', 'dx', 'dw', 'db')
    nat64 = _run(adder2d, x, w, b, kw)
    for name, a, e in zip(names, nat64, ref):
        _assert_close(a, e, 1e-10, f'float64 {name}')
    nat32 = _run(adder2d, x, w, b, kw, dtype=torch.float32)
    for name, a, e in zip(names, nat32, ref):
        _assert_close(a, e, 2e-5, f'float32 {name}')


@needs_native
def test_native_single_thread_and_partial_grads():
    shape = (3, 10, 9, 9, 12, 3, 1, 1, 1, 1)
    x, w, _, kw = _make(shape)
    ref = _run(adder2d_reference, x, w, None, kw)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        nat = _run(adder2d, x, w, None, kw)
    finally:
        torch.set_num_threads(threads)
    for name, a, e in zip(('y', 'dx', 'dw'), nat[:3], ref[:3]):
        _assert_close(a, e, 1e-10, name)
    # only one of the two gradients requested
    xg = x.clone().requires_grad_()
    adder2d(xg, w, **kw).sum().backward()
    wg = w.clone().requires_grad_()
    adder2d(x, wg, **kw).sum().backward()
    xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
    adder2d_reference(xr, wr, **kw).sum().backward()
    _assert_close(xg.grad, xr.grad, 1e-10, 'dx only')
    _assert_close(wg.grad, wr.grad, 1e-10, 'dw only')


@needs_native
def test_native_non_contiguous_inputs():
    x, w, b, kw = _make((2, 6, 8, 10, 7, 3, 2, 1, 1, 1))
    xs = x.to(memory_format=torch.channels_last)
    wt = w.permute(1, 0, 2, 3).contiguous().permute(1, 0, 2, 3)
    xw = torch.randn(2, 6, 8, 20, dtype=torch.float64)[..., ::2]
    for xi, wi in ((xs, wt), (xw, w)):
        assert not (xi.is_contiguous() and wi.is_contiguous())
        nat = _run(adder2d, xi, wi, b, kw)
        ref = _run(adder2d_reference, xi.contiguous(), wi.contiguous(), b, kw)
        for name, a, e in zip(('y', 'dx', 'dw', 'db'), nat, ref):
            _assert_close(a, e, 1e-10, name)
        assert nat[0].is_contiguous()


@pytest.mark.skipif(
    not (os.environ.get('CI') or os.environ.get('MMPKKD_REQUIRE_EXT')),
    reason='only enforced in CI (CI or MMPKKD_REQUIRE_EXT set)')
def test_extension_is_built():
    from mmpkkd.ops.ext_loader import load_error
    assert NATIVE, f'mmpkkd._ext failed to import: {load_error()}'


# ----------------------------------------------------------- API, misc


def test_fallback_warns_once(monkeypatch):
    monkeypatch.setattr(adder2d_module, '_get_ext', lambda: None)
    monkeypatch.setattr(adder2d_module, '_WARNED', set())
    assert not adder2d_module.native_available()
    x, w, b, kw = _make((2, 3, 6, 6, 4, 3, 1, 1, 1, 1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        y1 = adder2d(x, w, b, **kw)
        y2 = adder2d(x, w, b, **kw)
    fallback = [c for c in caught
                if issubclass(c.category, Adder2dFallbackWarning)]
    assert len(fallback) == 1
    assert 'pip install --no-build-isolation -e .' in str(fallback[0].message)
    expected = adder2d_reference(x, w, b, **kw)
    torch.testing.assert_close(y1, expected, rtol=0, atol=0)
    torch.testing.assert_close(y2, expected, rtol=0, atol=0)


@pytest.mark.parametrize('fn', [adder2d, adder2d_reference])
def test_autocast_bfloat16_runs_in_float32(fn):
    x, w, b, kw = _make((2, 4, 6, 6, 5, 3, 1, 1, 1, 1), dtype=torch.float32)
    expected = fn(x, w, b, **kw)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y = fn(x, w, b, **kw)
        xb = x.bfloat16().requires_grad_()
        yb = fn(xb, w, b, **kw)
    assert y.dtype == torch.float32 and yb.dtype == torch.float32
    torch.testing.assert_close(y, expected, rtol=0, atol=0)
    yb.sum().backward()
    assert xb.grad is not None and xb.grad.dtype == torch.bfloat16


@pytest.mark.parametrize('fn', [adder2d, adder2d_reference])
def test_argument_validation(fn):
    x = torch.randn(2, 4, 6, 6)
    w = torch.randn(6, 2, 3, 3)
    fn(x, w, groups=2)  # valid
    cases = [
        ((x[0], w), {}, '4-D'),
        ((x, w[0]), {}, '4-D'),
        ((x, w), {}, 'C_in/groups'),  # 4 channels vs 2 * groups=1
        ((x, w), dict(groups=3), 'divide'),
        ((x, w.double()), dict(groups=2), 'dtype'),
        ((x.half(), w.half()), dict(groups=2), 'autocast'),
        ((x, w), dict(groups=2, stride=0), 'stride'),
        ((x, w), dict(groups=2, padding=(1, 2, 3)), 'padding'),
        ((x, w, torch.randn(5)), dict(groups=2), 'bias'),
        ((x[..., :2, :2], w), dict(groups=2), 'too small'),
        ((x, w.to('meta')), dict(groups=2), 'device'),
    ]
    for args, kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            fn(*args, **kwargs)
