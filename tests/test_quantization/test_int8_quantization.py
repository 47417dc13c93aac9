"""mmpkkd.quantization: grid, lossless clamp, BN folding, whole models."""
import os.path as osp

import pytest
import torch
import torch.nn as nn

from mmpkkd.engine import CheckpointError
from mmpkkd.models.layers import Adder2d
from mmpkkd.apis import get_model, get_model_cfg
from mmpkkd.quantization import (Int8Adder2d, collect_stats, load_int8,
                                 quantize_int8,
                                 save_int8, shared_grid)

from conftest import REPO  # noqa: E402


def float_adder_bn(adder, bn, x):
    """Float64 formula: bn(-sum |x_pad - w|) with eval statistics."""
    xp = nn.functional.pad(x.double(), (1, 1, 1, 1))
    cols = nn.functional.unfold(xp, 3)  # (N, K, L)
    w = adder.weight.double().view(adder.out_channels, -1)
    y = -(cols[:, None] - w[None, :, :, None]).abs().sum(2)
    y = y.view(x.shape[0], adder.out_channels, x.shape[2], x.shape[3])
    std = (bn.running_var.double() + bn.eps).sqrt()
    return ((y - bn.running_mean.double().view(1, -1, 1, 1)) /
            std.view(1, -1, 1, 1) * bn.weight.double().view(1, -1, 1, 1) +
            bn.bias.double().view(1, -1, 1, 1))


def test_shared_grid_holds_zero_and_range():
    from mmpkkd.ops.int8 import quantize_per_tensor_int8 as quantize
    for lo, hi in [(0.0, 2.55), (-1.0, 3.0), (0.5, 4.0), (-2.0, -1.0)]:
        g = shared_grid(lo, hi)
        lo0, hi0 = min(lo, 0.0), max(hi, 0.0)
        # 256 levels span exactly the range stretched to hold 0
        assert g.scale * 255 == pytest.approx(hi0 - lo0, rel=1e-6)
        # both ends land on codes -128 / 127 (no clipping inside the range)
        q = quantize(torch.tensor([lo0, hi0]), g.inv_scale, g.zero_point)
        assert q.tolist() == [-128, 127]
        # a real 0 (the zero padding) is a code of its own, exactly
        assert quantize(torch.zeros(1), g.inv_scale,
                        g.zero_point).item() == g.zero_point
        rlo, rhi = g.real_range
        assert rlo == pytest.approx(lo0, abs=g.scale / 2)
        assert rhi == pytest.approx(hi0, abs=g.scale / 2)
    assert shared_grid(0.0, 2.55).zero_point == -128
    assert shared_grid(-2.0, -1.0).zero_point == 127


def make_pair(cin=6, cout=5, seed=0):
    torch.manual_seed(seed)
    adder = Adder2d(cin, cout, 3, padding=1).eval()
    bn = nn.BatchNorm2d(cout).eval()
    with torch.no_grad():
        bn.running_mean.uniform_(-30, -10)
        bn.running_var.uniform_(20, 60)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    return adder, bn


@torch.no_grad()
def test_on_grid_values_are_exact_and_clamp_is_lossless():
    """Inputs and in-range weights on the grid: int8 == float formula.

    Half of the weights lie far outside the input range [0, 2.55]; the
    lossless range clamp must make that cost nothing.
    """
    adder, bn = make_pair()
    grid = shared_grid(0.0, 2.55)
    s = grid.scale
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        codes = torch.randint(0, 256, adder.weight.shape, generator=gen)
        w = codes.double() * s
        far = torch.rand(adder.weight.shape, generator=gen) < 0.5
        side = torch.rand(int(far.sum()), generator=gen) < 0.5
        w[far] = torch.where(side, -7.0, 9.5).double()
        adder.weight.copy_(w.float())
    layer = Int8Adder2d.from_float(adder, bn, 0.0, 2.55)
    x = torch.randint(0, 256, (2, 6, 7, 7), generator=gen).float() * s
    ref = float_adder_bn(adder, bn, x.double())
    # one code step of one tap moves an output of channel c by alpha[c]
    # (0.9e-3 to 2e-3 here); all that may differ is the float32 rounding
    # of the final affine (a few 1e-6), far below a step
    step = layer.alpha.double().abs().view(1, -1, 1, 1)
    err = (layer(x).double() - ref).abs()
    assert bool((err <= step / 64).all()), float((err / step).max())
    # the check sees a single code off by one: a weight moved by one step
    c, i = 1, int((layer.weight_int8[1].view(-1) < 127).nonzero()[0])
    layer.weight_int8[c].view(-1)[i] += 1
    err = (layer(x).double() - ref).abs()
    assert bool((err[:, c] >= step[:, c] * 0.99).all())


@torch.no_grad()
def test_off_grid_error_is_rounding_sized():
    adder, bn = make_pair(seed=2)
    x = torch.rand(2, 6, 7, 7) * 3
    layer = Int8Adder2d.from_float(adder, bn, 0.0, 3.0)
    ref = float_adder_bn(adder, bn, x.double())
    err = (layer(x).double() - ref).abs()
    # per output: at most K = 54 taps, each off by <= one grid step
    bound = 54 * layer.grid.scale * (bn.weight.double() / (
        bn.running_var.double() + bn.eps).sqrt()).view(1, -1, 1, 1)
    assert bool((err <= bound).all())
    assert float(err.mean()) < float(bound.mean()) / 4


def test_collect_stats_pairs_bn_that_reads_the_adder():
    net = nn.Sequential(
        Adder2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        Adder2d(4, 4, 1), nn.ReLU(), nn.BatchNorm2d(4)).eval()
    stats = collect_stats(net, [torch.randn(2, 3, 5, 5)], max_samples=1)
    assert stats['0'].bn_name == '1'
    assert stats['3'].bn_name is None  # a ReLU sits between
    assert stats['3'].lo >= 0 and stats['0'].lo < 0
    assert stats['0'].num_samples == 1


def test_quantize_checks_its_arguments():
    net = nn.Sequential(Adder2d(3, 4, 1), nn.BatchNorm2d(4)).eval()
    with pytest.raises(ValueError, match='max_samples'):
        quantize_int8(net, [torch.rand(1, 3, 4, 4)], max_samples=0)
    with pytest.raises(ValueError, match='clip_levels'):
        quantize_int8(net, [torch.rand(1, 3, 4, 4)], clip_levels=(1.5, ))


def test_collect_stats_needs_adders_and_batches():
    with pytest.raises(ValueError, match='no Adder2d'):
        collect_stats(nn.Conv2d(3, 3, 1), [torch.randn(1, 3, 4, 4)])
    with pytest.raises(ValueError, match='no batch'):
        collect_stats(Adder2d(3, 3, 1), [])


@pytest.fixture(scope='module')
def ann_resnet20():
    """ANN ResNet-20 of the digits config with non-trivial BN statistics."""
    config = osp.join(REPO, 'configs/ann/ann_resnet20_1xb64-15e_digits.py')
    torch.manual_seed(0)
    net = get_model(config)
    for m in net.modules():  # the init zeroes some BN scales: undo that
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            m.momentum = None  # running stats = plain average of batches
            m.reset_running_stats()
    net.train()
    with torch.no_grad():  # BN running statistics of random images
        for _ in range(2):
            net(torch.randn(8, 3, 32, 32), mode='tensor')
    return net.eval(), get_model_cfg(config)


def test_quantize_resnet20_close_to_float_and_roundtrips(
        ann_resnet20, tmp_path):
    net, model_cfg = ann_resnet20
    calib = [torch.randn(4, 3, 32, 32) for _ in range(2)]
    qnet = quantize_int8(net, calib, max_samples=4, clip_levels=(1.0, 0.999))
    assert not any(isinstance(m, Adder2d) for m in qnet.modules())
    layers = [m for m in qnet.modules() if isinstance(m, Int8Adder2d)]
    assert len(layers) == 20  # 18 block convs + 2 shortcut 1x1s
    assert all(m.folded_bn for m in layers)
    assert any(isinstance(m, Adder2d) for m in net.modules())  # untouched
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        # compare features before the BN head (logits of a random net are
        # nearly constant)
        f_ref = net.extract_feat(x)[-1]
        f_q = qnet.extract_feat(x)[-1]
        y_q = qnet(x, mode='tensor')
    rel = float((f_q - f_ref).norm() / f_ref.norm())
    assert rel < 0.05, rel
    path = str(tmp_path / 'q.pth')
    save_int8(qnet, path, model_cfg, meta={'note': 'test'})
    loaded = load_int8(path)
    with torch.no_grad():
        assert torch.equal(loaded(x, mode='tensor'), y_q)


def test_distiller_quantizes_its_student():
    student = nn.Sequential(Adder2d(3, 4, 3, padding=1), nn.BatchNorm2d(4))

    class Distiller(nn.Module):
        def __init__(self):
            super().__init__()
            self.student = student
            self.teacher = nn.Conv2d(3, 4, 3)

    q = quantize_int8(Distiller().eval(), [torch.rand(2, 3, 6, 6)])
    assert isinstance(q[0], Int8Adder2d) and isinstance(q[1], nn.Identity)


def test_load_refuses_other_files(tmp_path):
    plain = str(tmp_path / 'plain.pth')
    torch.save({'state_dict': {}}, plain)
    with pytest.raises(ValueError, match='not an mmpkkd int8 model'):
        load_int8(plain)

    class Evil:
        def __reduce__(self):
            return (print, ('ran',))

    evil = str(tmp_path / 'evil.pth')
    torch.save({'format': 'mmpkkd-int8', 'x': Evil()}, evil)
    with pytest.raises(CheckpointError, match='Refused'):
        load_int8(evil)
