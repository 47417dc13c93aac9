"""Tests of mmpkkd.ops.adder2d: native kernels vs the float64 reference.

The oracle chain: a hand-computed case checks the pure-PyTorch reference;
the reference is also checked against the independent re-implementation of
the original AdderNet algorithm (groups 1, square stride and padding) and,
for every geometry (groups, dilation, stride and padding pairs, non-square
kernels), against a sum taken one kernel tap at a time; the native kernels (every CPU ISA this
machine supports, and both GPU backends, Triton and CUDA C++, when a GPU is
present) are then checked against the float64 CPU reference. The Triton
kernels are also tested without a GPU, through Triton's interpreter, in
tests/test_ops/test_adder2d_triton.py. The dispatcher registration (schemas, fake
kernels, autograd) is checked with torch.library.opcheck.
"""
import importlib
import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from mmpkkd.ops import (adder2d, adder2d_reference, adder2d_unfold_original,
                        cpu_isas_available, cuda_backends_available,
                        get_cpu_isa, get_cuda_backend, native_available,
                        set_cpu_isa, set_cuda_backend)

# (mmpkkd.ops.adder2d the attribute is the function; these are the modules)
reference_module = importlib.import_module('mmpkkd.ops.reference')
library_module = importlib.import_module('mmpkkd.ops._library')

NATIVE = native_available()
needs_native = pytest.mark.skipif(
    not NATIVE, reason='mmpkkd._ext not built '
    '(pip install --no-build-isolation -e .)')
CUDA = torch.cuda.is_available()
from conftest import REPO as REPO_ROOT  # noqa: E402
needs_cuda = pytest.mark.skipif(not CUDA, reason='no CUDA device')


def _isas():
    return list(cpu_isas_available('adder2d')) if NATIVE else ['none']


@pytest.fixture
def isa(request):
    set_cpu_isa(request.param)
    yield request.param
    set_cpu_isa('auto')


def _targets():
    """(device, CPU ISA or GPU backend) pairs the native op is tested on."""
    found = [('cpu', name) for name in _isas()] if NATIVE else []
    if CUDA:
        found += [('cuda', name) for name in cuda_backends_available()]
    return found


@pytest.fixture
def target(request):
    """A device to run on (its CPU kernel set or GPU backend forced for the
    test)."""
    device, name = request.param
    if device == 'cpu':
        set_cpu_isa(name)
        yield device
        set_cpu_isa('auto')
    else:
        previous = get_cuda_backend()
        set_cuda_backend(name)
        yield device
        set_cuda_backend(previous)


TARGETS = _targets()
TARGET_IDS = [f'{d}-{i}' for d, i in TARGETS]
needs_target = pytest.mark.skipif(not TARGETS,
                                  reason='no native kernel available')


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


def _run(fn, x, w, b, kwargs, grad_out=None, dtype=None, device='cpu'):
    """Forward + backward on ``device``; returns (y, dx, dw, db) as float64
    CPU tensors."""
    dtype = dtype or x.dtype

    def leaf(t):
        return t.detach().to(device, dtype).requires_grad_()

    x, w = leaf(x), leaf(w)
    b = leaf(b) if b is not None else None
    y = fn(x, w, b, **kwargs)
    if grad_out is None:
        grad_out = torch.randn(
            y.shape, generator=torch.Generator().manual_seed(1),
            dtype=torch.float64)
    y.backward(grad_out.to(device, dtype))
    return [t.detach().cpu().double() if t is not None else None
            for t in (y, x.grad, w.grad, b.grad if b is not None else None)]


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


def adder2d_taps(x, w, b, grad_out, stride, padding, dilation, groups):
    """Forward and AdderNet gradients summed one kernel tap at a time.

    Each tap (i, j) reads a strided slice of the zero-padded input, no
    unfold or fold; ``(y, dx, dw, db)`` as in the reference's docstring:
    dW sums ``(x_tap - w) * dY`` with padded taps (x = 0) included, dX sums
    ``HardTanh(w - x_tap) * dY`` and drops the taps on the padding.
    """
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)

    (sh, sw), (ph, pw), (dh, dw_) = pair(stride), pair(padding), pair(
        dilation)
    n, _, h, wd = x.shape
    co, cg, kh, kw = w.shape
    og = co // groups
    xp = F.pad(x, (pw, pw, ph, ph))
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + 2 * pw - dw_ * (kw - 1) - 1) // sw + 1
    y = x.new_zeros(n, co, ho, wo)
    dxp, dw = torch.zeros_like(xp), torch.zeros_like(w)
    for g in range(groups):
        cin, cout = slice(g * cg, (g + 1) * cg), slice(g * og, (g + 1) * og)
        gy = grad_out[:, cout, None]  # (N, Og, 1, Ho, Wo)
        for i in range(kh):
            rows = slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)
            for j in range(kw):
                cols = slice(j * dw_, j * dw_ + sw * (wo - 1) + 1, sw)
                tap = xp[:, cin, rows, cols]  # (N, Cg, Ho, Wo)
                diff = tap[:, None] - w[cout, :, i, j][None, :, :, None, None]
                y[:, cout] -= diff.abs().sum(2)
                dw[cout, :, i, j] += (diff * gy).sum((0, 3, 4))
                dxp[:, cin, rows, cols] += ((-diff).clamp(-1, 1) * gy).sum(1)
    y = y + b.view(1, -1, 1, 1)
    return y, dxp[:, :, ph:ph + h, pw:pw + wd], dw, grad_out.sum((0, 2, 3))


@pytest.mark.parametrize('shape', [
    (2, 3, 7, 9, 5, 3, 1, 1, 1, 1),  # square, groups 1
    (1, 4, 10, 13, 6, 3, 2, 2, 2, 1),  # stride, padding, dilation 2
    (3, 8, 6, 6, 8, 5, 1, 2, 1, 2),  # groups 2, 5x5
    (2, 6, 9, 7, 6, 3, 1, 1, 1, 6),  # depthwise
    (2, 12, 11, 8, 18, (3, 1), (2, 1), (1, 0), (1, 2), 3),  # pairs
    (2, 6, 8, 9, 9, (2, 3), (1, 2), (0, 2), (2, 1), 3),  # 2x3, even x odd
    (1, 4, 9, 6, 4, (1, 4), (3, 1), (2, 1), (1, 2), 2),  # 1x4, stride 3
    (1, 3, 5, 5, 2, 3, 3, 2, 1, 1),  # stride 3, mostly padding
], ids=_ids)
def test_reference_matches_tap_by_tap_sum(shape):
    x, w, b, kw = _make(shape)
    ref = _run(adder2d_reference, x, w, b, kw)
    grad_out = torch.randn(ref[0].shape, dtype=torch.float64,
                           generator=torch.Generator().manual_seed(1))
    taps = adder2d_taps(x, w, b, grad_out, **kw)
    for name, a, e in zip(('y', 'dx', 'dw', 'db'), ref, taps):
        assert a.shape == e.shape, name
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


# Coverage of the kernels' tiling: channels per group around the register
# and tile sizes (1, 15-17, 31-33, 63-65, in and out), sizes that are not
# tile multiples, stride 3, dilation 2, a (3, 1) kernel, depthwise, batch 1.
# Small spatial sizes keep the CPU part fast.
COVERAGE = [(2, c, 5, 7, c + 2, 3, 1, 1, 1, 1)
            for c in (1, 15, 16, 17, 31, 32, 33, 63, 64, 65)] + [
    (2, 34, 6, 5, 66, 3, 1, 1, 1, 2),  # 17 in / 33 out per group
    (3, 5, 13, 11, 7, 3, 1, 1, 1, 1),  # 3*13*11 columns: no tile multiple
    (2, 4, 11, 10, 6, 3, 3, 1, 1, 1),  # stride 3
    (2, 4, 9, 9, 6, 3, 1, 2, 2, 1),  # dilation 2
    (2, 6, 7, 6, 8, (3, 1), 1, (1, 0), 1, 2),  # (3, 1) kernel
    (2, 32, 6, 6, 32, 3, 1, 1, 1, 32),  # depthwise
    (1, 20, 7, 7, 18, 3, 2, 1, 1, 1),  # batch 1
]


def _check_native(shape, device, rel64=1e-10, rel32=2e-5):
    x, w, b, kw = _make(shape)
    ref = _run(adder2d_reference, x, w, b, kw)  # float64 on the CPU
    names = ('y', 'dx', 'dw', 'db')
    nat64 = _run(adder2d, x, w, b, kw, device=device)
    for name, a, e in zip(names, nat64, ref):
        _assert_close(a, e, rel64, f'{device} float64 {name}')
    nat32 = _run(adder2d, x, w, b, kw, dtype=torch.float32, device=device)
    for name, a, e in zip(names, nat32, ref):
        _assert_close(a, e, rel32, f'{device} float32 {name}')


@needs_target
@pytest.mark.parametrize('target', TARGETS, ids=TARGET_IDS, indirect=True)
@pytest.mark.parametrize('shape', SHAPES + COVERAGE, ids=_ids)
def test_native_matches_reference(shape, target):
    _check_native(shape, target)


# (N, C_in, C_out, groups): empty batch, no input channels, both
EMPTY = [(0, 4, 6, 1), (2, 0, 6, 1), (2, 0, 6, 3), (0, 0, 4, 2)]


@pytest.mark.parametrize('device', ['cpu'] + (['cuda'] if CUDA else []))
@pytest.mark.parametrize('fn', [adder2d, adder2d_reference],
                         ids=['native', 'reference'])
@pytest.mark.parametrize('sizes', EMPTY, ids=_ids)
def test_empty_tensors(sizes, fn, device):
    n, c_in, c_out, groups = sizes
    x = torch.randn(n, c_in, 5, 4, dtype=torch.float64)
    w = torch.randn(c_out, c_in // groups, 3, 3, dtype=torch.float64)
    b = torch.randn(c_out, dtype=torch.float64)
    y, dx, dw, db = _run(fn, x, w, b, dict(padding=1, groups=groups),
                         device=device)
    assert y.shape == (n, c_out, 5, 4)
    # every output is an empty sum (no channels) plus the bias, or absent
    torch.testing.assert_close(y, b.view(1, -1, 1, 1).expand_as(y))
    gy = torch.randn(y.shape, generator=torch.Generator().manual_seed(1),
                     dtype=torch.float64)
    assert dx.shape == x.shape and not dx.any()
    assert dw.shape == w.shape and not dw.any()  # dW: sum over no terms
    torch.testing.assert_close(db, gy.sum((0, 2, 3)))


@needs_target
@pytest.mark.parametrize('target', TARGETS, ids=TARGET_IDS, indirect=True)
def test_native_single_thread_and_partial_grads(target):
    shape = (3, 10, 9, 9, 12, 3, 1, 1, 1, 1)
    x, w, _, kw = _make(shape)
    ref = _run(adder2d_reference, x, w, None, kw)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        nat = _run(adder2d, x, w, None, kw, device=target)
    finally:
        torch.set_num_threads(threads)
    for name, a, e in zip(('y', 'dx', 'dw'), nat[:3], ref[:3]):
        _assert_close(a, e, 1e-10, name)
    # only one of the two gradients requested
    xd, wd = x.to(target), w.to(target)
    xg = xd.clone().requires_grad_()
    adder2d(xg, wd, **kw).sum().backward()
    wg = wd.clone().requires_grad_()
    adder2d(xd, wg, **kw).sum().backward()
    xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
    adder2d_reference(xr, wr, **kw).sum().backward()
    _assert_close(xg.grad.cpu(), xr.grad, 1e-10, 'dx only')
    _assert_close(wg.grad.cpu(), wr.grad, 1e-10, 'dw only')


@needs_target
@pytest.mark.parametrize('target', TARGETS, ids=TARGET_IDS, indirect=True)
def test_native_non_contiguous_inputs(target):
    x, w, b, kw = _make((2, 6, 8, 10, 7, 3, 2, 1, 1, 1))
    xs = x.to(memory_format=torch.channels_last)
    wt = w.permute(1, 0, 2, 3).contiguous().permute(1, 0, 2, 3)
    xw = torch.randn(2, 6, 8, 20, dtype=torch.float64)[..., ::2]
    for xi, wi in ((xs, wt), (xw, w)):
        assert not (xi.is_contiguous() and wi.is_contiguous())
        # (_run's .to(device) keeps a dense layout such as channels_last)
        nat = _run(adder2d, xi, wi, b, kw, device=target)
        ref = _run(adder2d_reference, xi.contiguous(), wi.contiguous(), b, kw)
        for name, a, e in zip(('y', 'dx', 'dw', 'db'), nat, ref):
            _assert_close(a, e, 1e-10, name)


@needs_target
@pytest.mark.parametrize('target', TARGETS, ids=TARGET_IDS, indirect=True)
def test_channels_last_layer_input(target):
    # the common case in a channels_last network: the input itself is NHWC
    x, w, b, kw = _make((2, 16, 7, 6, 12, 3, 1, 1, 1, 1))
    ref = _run(adder2d_reference, x, w, b, kw)
    xd = x.to(target).to(memory_format=torch.channels_last)
    assert not xd.is_contiguous()
    xd.requires_grad_()
    wd = w.to(target).requires_grad_()
    bd = b.to(target).requires_grad_()
    y = adder2d(xd, wd, bd, **kw)
    gy = torch.randn(y.shape, generator=torch.Generator().manual_seed(1),
                     dtype=torch.float64)
    y.backward(gy.to(target).to(memory_format=torch.channels_last))
    for name, a, e in zip(('y', 'dx', 'dw', 'db'),
                          (y, xd.grad, wd.grad, bd.grad), ref):
        _assert_close(a.detach().cpu(), e, 1e-10, name)


@needs_cuda
def test_cuda_non_default_stream():
    shape = (2, 17, 9, 8, 33, 3, 1, 1, 1, 1)
    x, w, b, kw = _make(shape)
    ref = _run(adder2d_reference, x, w, b, kw)
    stream = torch.cuda.Stream()
    # inputs made on the default stream, op enqueued on the side stream
    xd, wd, bd = (t.cuda().requires_grad_() for t in (x, w, b))
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        y = adder2d(xd, wd, bd, **kw)
        gy = torch.randn(y.shape, generator=torch.Generator().manual_seed(1),
                         dtype=torch.float64)
        y.backward(gy.cuda())
    torch.cuda.current_stream().wait_stream(stream)
    for name, a, e in zip(('y', 'dx', 'dw', 'db'),
                          (y, xd.grad, wd.grad, bd.grad), ref):
        _assert_close(a.detach().cpu(), e, 1e-10, name)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason='needs 2 GPUs')
def test_cuda_second_device():
    shape = (2, 16, 9, 8, 20, 3, 2, 1, 1, 1)
    with torch.cuda.device(0):  # the current device is not the tensors'
        _check_native(shape, 'cuda:1')


def _precision_settings(api):
    """A snapshot of torch's float32 matmul/conv precision settings, read
    through the same API family as ``api`` set them (torch refuses to read
    the legacy getters once the fp32_precision API has been used)."""
    if api == 'fp32_precision':
        return {name: getattr(obj, 'fp32_precision', None)
                for name, obj in (('matmul', torch.backends.cuda.matmul),
                                  ('cudnn', torch.backends.cudnn),
                                  ('global', torch.backends))}
    return {'matmul_precision': torch.get_float32_matmul_precision(),
            'matmul.allow_tf32': torch.backends.cuda.matmul.allow_tf32,
            'cudnn.allow_tf32': torch.backends.cudnn.allow_tf32}


def _set_precision(api):
    if api == 'allow_tf32':
        torch.backends.cuda.matmul.allow_tf32 = True
    elif api == 'fp32_precision':
        torch.backends.cuda.matmul.fp32_precision = 'tf32'
    else:
        torch.set_float32_matmul_precision(api)


@needs_cuda
@pytest.mark.parametrize('backend', cuda_backends_available())
@pytest.mark.parametrize('api', ['allow_tf32', 'fp32_precision', 'medium',
                                 'high'])
def test_cuda_backward_ignores_and_keeps_tf32_settings(api, backend):
    # a long reduction (K = 64*9, N*P = 4*256) where TF32 would cost ~1e-3;
    # each of torch's precision APIs is set, and must be left as it was
    shape = (4, 64, 16, 16, 64, 3, 1, 1, 1, 1)
    x, w, b, kw = _make(shape)
    ref = _run(adder2d_reference, x, w, b, kw)
    script = f"""
import json, torch
from mmpkkd.ops import adder2d, set_cuda_backend
import test_adder2d as t
set_cuda_backend({backend!r})
t._set_precision({api!r})
before = t._precision_settings({api!r})
x, w, b, kw = t._make({shape!r})
out = t._run(adder2d, x, w, b, kw, dtype=torch.float32, device='cuda')
after = t._precision_settings({api!r})
torch.save(out, 'out.pt')
print(json.dumps([before, after]))
"""
    # a fresh process: the legacy and the new API cannot be mixed in one
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = [REPO_ROOT, os.path.join(REPO_ROOT, 'tests'),
                os.path.dirname(os.path.abspath(__file__))]
        if os.environ.get('PYTHONPATH'):
            path.append(os.environ['PYTHONPATH'])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
        proc = subprocess.run([sys.executable, '-c', script], cwd=tmp,
                              env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        before, after = json.loads(proc.stdout.strip().splitlines()[-1])
        nat = torch.load(os.path.join(tmp, 'out.pt'))
    assert before == after
    for name, a, e in zip(('y', 'dx', 'dw', 'db'), nat, ref):
        _assert_close(a, e, 2e-5, f'{backend} float32 {name} ({api})')


@needs_cuda
@pytest.mark.skipif(len(cuda_backends_available()) < 2,
                    reason='needs both the Triton and the CUDA C++ backend')
@pytest.mark.parametrize('shape', SHAPES, ids=_ids)
def test_cuda_backends_agree(shape):
    x, w, b, kw = _make(shape, dtype=torch.float32)
    outs = {}
    previous = get_cuda_backend()
    try:
        for name in ('triton', 'cuda'):
            set_cuda_backend(name)
            outs[name] = _run(adder2d, x, w, b, kw, device='cuda')
    finally:
        set_cuda_backend(previous)
    for name, a, e in zip(('y', 'dx', 'dw', 'db'), outs['triton'],
                          outs['cuda']):
        _assert_close(a, e, 2e-5, f'triton vs cuda {name}')


def test_cuda_backend_selection():
    with pytest.raises(ValueError, match='triton'):
        set_cuda_backend('cudnn')
    assert get_cuda_backend() in ('triton', 'cuda', 'reference')


# ------------------------------------------------ dispatcher registration


def _opcheck_cases(device):
    for shape, with_bias in (((2, 4, 6, 5, 6, 3, 1, 1, 1, 2), True),
                             ((1, 3, 5, 5, 2, (3, 1), 2, (1, 0), 1, 1),
                              False)):
        x, w, b, kw = _make(shape)
        x, w, b = (t.to(device).requires_grad_() for t in (x, w, b))
        geo = library_module.check_adder2d_args(x, w, None, kw['stride'],
                                                kw['padding'],
                                                kw['dilation'],
                                                kw['groups'])
        yield (x, w, b if with_bias else None, list(geo.stride),
               list(geo.padding), list(geo.dilation), geo.groups)


@pytest.mark.parametrize('device', ['cpu'] + (['cuda'] if CUDA else []))
@pytest.mark.parametrize('name', ['adder2d', 'adder2d_reference'])
def test_opcheck(name, device):
    forward = getattr(torch.ops.mmpkkd, name).default
    backward = getattr(torch.ops.mmpkkd, f'{name}_backward').default
    for args in _opcheck_cases(device):
        torch.library.opcheck(forward, args)
        y = forward(*args)
        plain = [a.detach() if isinstance(a, torch.Tensor) else a
                 for a in args[:2]]
        for mask in ([True, True], [True, False], [False, True]):
            torch.library.opcheck(
                backward, (torch.randn_like(y), *plain, *args[3:], mask))


@needs_native
def test_cpu_isa_control():
    supported = cpu_isas_available('adder2d')
    assert supported[-1] == 'generic'
    assert get_cpu_isa('adder2d') == supported[0]  # the best by default
    with pytest.raises(ValueError, match='unknown CPU ISA'):
        set_cpu_isa('sse9')
    try:
        assert set_cpu_isa(supported[-1]) == get_cpu_isa() == 'generic'
    finally:
        assert set_cpu_isa('auto') == supported[0]


@needs_native
def test_native_schemas_match_python_fallback():
    # the Python definitions used without the extension are the same ops
    assert str(torch.ops.mmpkkd.adder2d.default._schema) == \
        f'mmpkkd::{library_module.ADDER2D_SCHEMA}'
    assert str(torch.ops.mmpkkd.adder2d_backward.default._schema) == \
        f'mmpkkd::{library_module.ADDER2D_BACKWARD_SCHEMA}'


def test_compile_fullgraph_op_matches_eager():
    x, w, b, kw = _make((2, 5, 7, 6, 9, 3, 2, 1, 1, 1), dtype=torch.float32)

    def fn(x, w, b):
        return adder2d(x, w, b, **kw).square().sum()

    compiled = torch.compile(fn, fullgraph=True, backend='aot_eager')
    grads = []
    for f in (fn, compiled):
        leaves = [t.clone().requires_grad_() for t in (x, w, b)]
        f(*leaves).backward()
        grads.append([t.grad for t in leaves])
    for name, a, e in zip(('dx', 'dw', 'db'), grads[1], grads[0]):
        _assert_close(a, e, 1e-6, name)


@pytest.mark.skipif(
    not (os.environ.get('CI') or os.environ.get('MMPKKD_REQUIRE_EXT')),
    reason='only enforced in CI (CI or MMPKKD_REQUIRE_EXT set)')
def test_extension_is_built():
    from mmpkkd.ops.ext_loader import load_error
    assert NATIVE, f'mmpkkd._ext failed to import: {load_error()}'


# ----------------------------------------------------------- API, misc


_FALLBACK_SCRIPT = r"""
import json, sys, warnings
sys.modules['mmpkkd._ext'] = None  # as if the extension were not built
import torch
from mmpkkd.ops import (Adder2dFallbackWarning, adder2d, adder2d_reference,
                        native_available)
torch.manual_seed(0)
x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
w = torch.randn(4, 3, 3, 3, dtype=torch.float64)
b = torch.randn(4, dtype=torch.float64)
result = {'native': native_available()}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    outs = []
    for fn in (adder2d, adder2d, adder2d_reference):
        leaves = [t.clone().requires_grad_() for t in (x, w, b)]
        y = fn(*leaves, padding=1)
        y.square().sum().backward()
        outs.append([y.detach()] + [t.grad for t in leaves])
messages = [str(c.message) for c in caught
            if issubclass(c.category, Adder2dFallbackWarning)]
result['warnings'] = messages
result['max_diff'] = max((a - e).abs().max().item()
                         for o in outs[:2] for a, e in zip(o, outs[2]))
leaves = [t.clone().requires_grad_() for t in (x, w, b)]
torch.library.opcheck(torch.ops.mmpkkd.adder2d.default,
                      (*leaves, [1, 1], [1, 1], [1, 1], 1))
fn = torch.compile(lambda x, w: adder2d(x, w, padding=1).sum(),
                   fullgraph=True, backend='aot_eager')
result['compiled'] = fn(x, w).item() - adder2d_reference(
    x, w, padding=1).sum().item()
print(json.dumps(result))
"""


def test_fallback_without_extension():
    # a fresh interpreter where importing mmpkkd._ext fails: the op is then
    # defined from Python on the reference kernels, warns once, still passes
    # opcheck and compiles
    proc = subprocess.run([sys.executable, '-c', _FALLBACK_SCRIPT],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result['native'] is False
    assert len(result['warnings']) == 1
    assert 'pip install --no-build-isolation -e .' in result['warnings'][0]
    assert result['max_diff'] == 0.0
    assert abs(result['compiled']) < 1e-9


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
