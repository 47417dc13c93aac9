"""PKKD's term balance: gradient shares, and the paper's open choices as
options (Eq. 13's reduction, T^2, the Gaussian kernel's argument, map
standardisation)."""
import copy
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from pkkd_helpers import batch, pkkd_cfg

from mmpkkd.models.distillers import GaussianKernel, LayerRecord
from mmpkkd.models.distillers.grad_share import (conv_weights,
                                                 gradient_shares,
                                                 shares_from_norms)
from mmpkkd.models.distillers.kernels import standardize_maps
from mmpkkd.models.losses import BlendKDLoss, KernelFeatureLoss
from mmpkkd.registry import MODELS

pytestmark = pytest.mark.usefixtures('mmpkkd_scope')


def test_gradient_shares_hand_computed():
    """Two layers, two terms with known gradients.

    a = 3 sum(w1) + sum(w2), b = 4 sum(w1): on w1 (2 elements) the norms
    are 3 sqrt(2) and 4 sqrt(2) -> fractions 3/7 and 4/7; on w2 only a
    acts -> 1 and 0. Averaged over the layers: a 5/7, b 2/7.
    """
    w1 = torch.ones(2, 1, 1, 1, requires_grad=True)
    w2 = torch.ones(5, 1, 1, 1, requires_grad=True)
    terms = {
        'student.loss_a': 3 * w1.sum() + w2.sum(),
        'student.loss_b': 4 * w1.sum()
    }
    shares = gradient_shares(terms, [w1, w2], prefix='student.')
    assert sorted(shares) == ['student.grad_share.a', 'student.grad_share.b']
    assert shares['student.grad_share.a'].item() == pytest.approx(5 / 7)
    assert shares['student.grad_share.b'].item() == pytest.approx(2 / 7)
    # the graph is kept: the caller's own backward still works
    (terms['student.loss_a'] + terms['student.loss_b']).backward()
    assert w1.grad.flatten().tolist() == [7.0, 7.0]


def test_shares_skip_unreached_layers_and_handle_nothing():
    norms = torch.tensor([[0., 2.], [0., 6.]])  # layer 0 reached by none
    assert shares_from_norms(norms).tolist() == [0.25, 0.75]
    assert shares_from_norms(torch.zeros(2, 3)).tolist() == [0.0, 0.0]
    diverged = shares_from_norms(torch.tensor([[float('nan'), 1.], [0., 1.]]))
    assert torch.isnan(diverged).all()


def _reference_shares(model, inputs, samples):
    """Per-term shares from separate ``backward()`` calls into ``.grad``
    of fresh copies of the model (not the autograd.grad route)."""
    keys = [k for k in model.loss(inputs, samples) if k.startswith('student')]
    per_term = {}
    for key in keys:
        clone = copy.deepcopy(model)
        torch.manual_seed(0)
        clone.loss(inputs, samples)[key].backward()
        per_term[key] = [
            0.0 if p.grad is None else p.grad.double().norm().item()
            for _, p in conv_weights(clone.student)
        ]
    n_layers = len(next(iter(per_term.values())))
    fractions = {k: [] for k in keys}
    for layer in range(n_layers):
        total = sum(v[layer] for v in per_term.values())
        if total > 0:
            for key in keys:
                fractions[key].append(per_term[key][layer] / total)
    return {k: sum(v) / len(v) for k, v in fractions.items()}


def test_distiller_shares_match_separate_backward_passes():
    torch.manual_seed(0)
    model = MODELS.build(pkkd_cfg())
    model.train()
    inputs, samples = batch(8)
    reference = _reference_shares(model, inputs, samples)
    model.request_grad_shares()
    torch.manual_seed(0)
    losses = model.loss(inputs, samples)
    shares = {k: v.item() for k, v in losses.items() if '.grad_share.' in k}
    assert sorted(shares) == ['student.grad_share.cls',
                              'student.grad_share.kd',
                              'student.grad_share.mid']
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-5)
    for key, expected in reference.items():
        name = key.replace('student.loss_', 'student.grad_share.')
        assert shares[name] == pytest.approx(expected, rel=1e-3), name
    # shares are measured once per request, and are not summed into the loss
    assert not any('grad_share' in k for k in model.loss(inputs, samples))
    parsed, log_vars = model.parse_losses(losses)
    expected_total = sum(v for k, v in losses.items() if 'loss' in k)
    assert parsed.item() == pytest.approx(expected_total.item())


def test_mid_share_grows_with_beta():
    inputs, samples = batch(8)
    shares = []
    for beta in (0.0, 0.01, 1.0, 100.0):
        torch.manual_seed(0)
        model = MODELS.build(pkkd_cfg(loss_mid=dict(
            type='KernelFeatureLoss', loss_weight=beta)))
        model.train()
        model.request_grad_shares()
        shares.append(
            model.loss(inputs, samples)['student.grad_share.mid'].item())
    assert shares[0] == 0.0
    assert shares[1] < shares[2] < shares[3]


def test_kernel_feature_loss_sum_is_eq13_per_image():
    torch.manual_seed(0)
    s = [torch.randn(3, 4, 5, 5), torch.randn(3, 8, 2, 2)]
    t = [torch.randn(3, 4, 5, 5), torch.randn(3, 8, 2, 2)]
    expected = 0.0
    for a, b in zip(s, t):
        for n in range(3):  # squared L2 norm of each image, batch mean
            expected += ((a[n] - b[n]).double()**2).sum().item() / 3
    got = KernelFeatureLoss(loss_weight=2.0, reduction='sum')(s, t).item()
    assert got == pytest.approx(2.0 * expected, rel=1e-5)
    mean = KernelFeatureLoss(loss_weight=2.0)(s, t).item()
    expected_mean = sum(((a - b).double()**2).mean().item()
                        for a, b in zip(s, t))
    assert mean == pytest.approx(2.0 * expected_mean, rel=1e-5)
    with pytest.raises(ValueError, match='reduction'):
        KernelFeatureLoss(reduction='batchmean')


def test_kd_without_t_squared_is_plain_kl():
    torch.manual_seed(0)
    s, t = torch.randn(6, 10), torch.randn(6, 10)
    temp = 4.0
    p_t = F.softmax(t.double() / temp, dim=1)
    log_p_s = F.log_softmax(s.double() / temp, dim=1)
    kl = (p_t * (p_t.log() - log_p_s)).sum(1).mean().item()
    plain = BlendKDLoss(alpha=0.5, temperature=temp, t_squared=False)(s, t)
    scaled = BlendKDLoss(alpha=0.5, temperature=temp)(s, t)
    assert plain['loss_kd'].item() == pytest.approx(0.5 * kl, rel=1e-5)
    assert scaled['loss_kd'].item() == pytest.approx(0.5 * 16 * kl, rel=1e-5)


def test_gaussian_kernel_of_the_conv_output():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, padding=1, bias=True).double()
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    record = LayerRecord(conv, x, conv(x))
    dot = F.conv2d(x, conv.weight, None, 1, 1)  # x.f without the bias
    got = GaussianKernel(sigma=2.0, argument='conv_output')(record)
    torch.testing.assert_close(got.double(), torch.exp(dot / 8.0),
                               rtol=1e-5, atol=1e-7)
    auto = GaussianKernel(argument='conv_output')(record)
    torch.testing.assert_close(
        auto.double(), torch.exp(dot / dot.abs().mean()), rtol=1e-5,
        atol=1e-7)
    with pytest.raises(ValueError, match='argument'):
        GaussianKernel(argument='output')


def test_channel_standardised_maps():
    maps = torch.rand(4, 3, 5, 5, dtype=torch.float64) * 7 + 2
    out = standardize_maps(maps)
    flat = maps.permute(1, 0, 2, 3).reshape(3, -1)
    expected = (flat - flat.mean(1, keepdim=True)) / torch.sqrt(
        flat.var(1, unbiased=False, keepdim=True) + 1e-5)
    torch.testing.assert_close(out.permute(1, 0, 2, 3).reshape(3, -1),
                               expected)
    # in the distiller: a constant offset between the maps costs nothing
    torch.manual_seed(0)
    model = MODELS.build(pkkd_cfg(map_norm='channel'))
    model.train()
    assert math.isfinite(model.loss(*batch(4))['student.loss_mid'].item())
    with pytest.raises(ValueError, match='map_norm'):
        MODELS.build(pkkd_cfg(map_norm='batch'))
