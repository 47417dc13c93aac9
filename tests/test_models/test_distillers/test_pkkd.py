"""PKKD: kernels, losses, hook capture, teacher isolation, build errors."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from pkkd_helpers import batch, pkkd_cfg

from mmpkkd.evaluation import TeacherAccuracy
from mmpkkd.models.distillers import (FeatureCapture, GaussianKernel,
                                      LaplaceKernel, LayerRecord)
from mmpkkd.models.layers import Adder2d
from mmpkkd.models.losses import BlendKDLoss, KernelFeatureLoss
from mmpkkd.registry import MODELS


pytestmark = pytest.mark.usefixtures('mmpkkd_scope')


def patches(x, module):
    """Unfolded zero-padded input patches per group: (N, G, K, L)."""
    cols = F.unfold(x, module.kernel_size, module.dilation, module.padding,
                    module.stride)
    n, _, length = cols.shape
    return cols.view(n, module.groups, -1, length)


def out_hw(x, module):
    h = (x.shape[2] + 2 * module.padding[0] - module.dilation[0] *
         (module.kernel_size[0] - 1) - 1) // module.stride[0] + 1
    w = (x.shape[3] + 2 * module.padding[1] - module.dilation[1] *
         (module.kernel_size[1] - 1) - 1) // module.stride[1] + 1
    return h, w


def direct_distances(x, module, p: int):
    """||patch - filter||_p^p computed directly on unfolded patches."""
    cols = patches(x, module)  # (N, G, K, L)
    w = module.weight.view(module.groups, -1, cols.shape[2])  # (G, Cg, K)
    diff = cols[:, :, None] - w[None, :, :, :, None]  # (N, G, Cg, K, L)
    dist = diff.abs().pow(p).sum(3)
    return dist.reshape(x.shape[0], -1, *out_hw(x, module))


@pytest.mark.parametrize('stride,padding,groups', [(1, 1, 1), (2, 1, 2),
                                                   (1, 0, 1)])
def test_gaussian_kernel_equals_direct_formula(stride, padding, groups):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, stride, padding, groups=groups, bias=True)
    conv = conv.double()
    x = torch.randn(2, 4, 7, 9, dtype=torch.float64)
    record = LayerRecord(conv, x, conv(x))
    sigma = 3.0
    expected = torch.exp(-direct_distances(x, conv, 2) / (2 * sigma**2))
    got = GaussianKernel(sigma=sigma)(record)
    torch.testing.assert_close(got.double(), expected, rtol=1e-4,
                               atol=1e-6)
    # 'auto': 2 sigma^2 = mean squared distance, so mean exponent is -1
    log_k = torch.log(GaussianKernel()(record).double())
    assert log_k.mean().item() == pytest.approx(-1.0, rel=1e-4)


def test_laplace_kernel_equals_direct_formula():
    torch.manual_seed(0)
    adder = Adder2d(3, 5, 3, stride=1, padding=1).double()
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    record = LayerRecord(adder, x, adder(x))
    expected = torch.exp(-direct_distances(x, adder, 1) / 7.0)
    torch.testing.assert_close(
        LaplaceKernel(sigma=7.0)(record).double(), expected)
    assert torch.log(LaplaceKernel()(record).double()).mean().item() == \
        pytest.approx(-1.0, rel=1e-5)


def test_kernel_hand_computed_case():
    """One 1x1 filter, one pixel: x = 3, f = 1 -> both kernels by hand."""
    conv = nn.Conv2d(1, 1, 1, bias=False)
    adder = Adder2d(1, 1, 1)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        adder.weight.fill_(1.0)
    x = torch.full((1, 1, 1, 1), 3.0)
    g = GaussianKernel(sigma=2.0)(LayerRecord(conv, x, conv(x)))
    lap = LaplaceKernel(sigma=4.0)(LayerRecord(adder, x, adder(x)))
    assert g.item() == pytest.approx(math.exp(-4.0 / 8.0))  # (3-1)^2/(2*4)
    assert lap.item() == pytest.approx(math.exp(-2.0 / 4.0))  # |3-1|/4


def test_blend_loss_matches_manual_computation():
    torch.manual_seed(0)
    s = torch.randn(5, 4, dtype=torch.float64)
    t = torch.randn(5, 4, dtype=torch.float64)
    alpha, temp = 0.7, 3.0
    out = BlendKDLoss(alpha=alpha, temperature=temp)(s, t)
    kd = 0.0
    for i in range(5):
        p_t = [math.exp(v / temp) for v in t[i].tolist()]
        p_s = [math.exp(v / temp) for v in s[i].tolist()]
        p_t = [v / sum(p_t) for v in p_t]
        p_s = [v / sum(p_s) for v in p_s]
        kd += sum(a * math.log(a / b) for a, b in zip(p_t, p_s))
    assert set(out) == {'loss_kd'}  # the hard term is the head's loss
    assert out['loss_kd'].item() == pytest.approx(alpha * temp**2 * kd / 5)
    assert BlendKDLoss(alpha=0.0)(s, t) == {}


def test_kernel_feature_loss_hand_value():
    s = [torch.ones(1, 2, 2, 2), torch.zeros(1, 1, 1, 3)]
    t = [torch.zeros(1, 2, 2, 2), torch.full((1, 1, 1, 3), 2.0)]
    # layer 1: mean 1, layer 2: mean 4 -> 5, times beta 0.5
    assert KernelFeatureLoss(0.5)(s, t).item() == pytest.approx(2.5)


def test_capture_equals_manual_forward_and_hooks_are_removed():
    torch.manual_seed(0)
    model = MODELS.build(pkkd_cfg()).student.eval()
    names = ['backbone.conv1', 'backbone.layer2.0.conv1']
    capture = FeatureCapture(model, names)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad(), capture.recording() as records:
        model(x, mode='tensor')
        bb = model.backbone
        stem = bb.relu(bb.norm1(bb.conv1(x)))
        after1 = bb.layer1(stem)
    assert torch.equal(records['backbone.conv1'].input, x)
    assert torch.equal(records['backbone.conv1'].output, bb.conv1(x))
    rec = records['backbone.layer2.0.conv1']
    torch.testing.assert_close(rec.input, after1)
    torch.testing.assert_close(rec.output, bb.layer2[0].conv1(after1))
    assert rec.module is bb.layer2[0].conv1
    modules = dict(model.named_modules())
    assert all(not modules[n]._forward_hooks for n in names)
    with pytest.raises(RuntimeError):  # removed on errors too
        with capture.recording():
            raise RuntimeError('boom')
    assert all(not modules[n]._forward_hooks for n in names)


def test_loss_terms_and_teacher_isolation():
    torch.manual_seed(0)
    model = MODELS.build(pkkd_cfg())
    model.init_weights()
    model.train()
    inputs, samples = batch()
    losses = model(inputs, samples, mode='loss')
    assert set(losses) == {
        'teacher.loss_cls', 'student.loss_cls', 'student.loss_kd',
        'student.loss_mid'
    }
    teacher_params = dict(model.teacher.named_parameters())
    ce_grads = torch.autograd.grad(
        losses['teacher.loss_cls'], list(teacher_params.values()),
        retain_graph=True)
    total = sum(losses.values())
    total.backward()
    for (name, param), ce_grad in zip(teacher_params.items(), ce_grads):
        assert torch.equal(param.grad, ce_grad), name
    # the student does learn from the feature loss
    mid_grad = torch.autograd.grad(
        model(inputs, samples, mode='loss')['student.loss_mid'],
        model.student.backbone.layer1[2].conv2.weight)[0]
    assert mid_grad.abs().sum() > 0
    assert model.student_connectors[0].weight.grad.abs().sum() > 0


def test_bad_layer_name_lists_valid_names():
    with pytest.raises(KeyError) as err:
        MODELS.build(pkkd_cfg(distill_layers=['backbone.layer9.0.conv1']))
    msg = str(err.value)
    assert 'backbone.layer9.0.conv1' in msg
    assert 'backbone.layer1.0.conv1' in msg  # a valid name is listed


def test_kernel_layer_mismatch_and_channel_mismatch():
    with pytest.raises(TypeError, match='LaplaceKernel needs an Adder2d'):
        MODELS.build(pkkd_cfg(distill_layers=['backbone.conv1']))
    pair = dict(student='backbone.layer1.0.conv1',
                teacher='backbone.layer2.0.conv1')
    with pytest.raises(ValueError, match="connector='none'"):
        MODELS.build(pkkd_cfg(distill_layers=[pair], connector='none'))
    # channels differ, but the student connector maps them; the spatial
    # sizes (32x32 vs 16x16) then fail clearly at the first forward
    model = MODELS.build(pkkd_cfg(distill_layers=[pair]))
    with pytest.raises(ValueError, match='same spatial size'):
        model(*batch(), mode='loss')


@pytest.mark.parametrize('overrides,absent', [
    (dict(distill_layers=[]), 'student.loss_mid'),
    (dict(loss_blend=dict(type='BlendKDLoss', alpha=0.0)), 'student.loss_kd'),
    (dict(student_kernel=dict(type='IdentityKernel'),
          teacher_kernel=dict(type='IdentityKernel')), None),
    (dict(connector='both'), None),
])
def test_ablations_by_config(overrides, absent):
    model = MODELS.build(pkkd_cfg(**overrides))
    model.init_weights()
    losses = model(*batch(), mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())
    if absent:
        assert absent not in losses
    if model.teacher_connectors:  # 'both': the teacher-side 1x1 learns too
        sum(losses.values()).backward()
        assert model.teacher_connectors[0].weight.grad.abs().sum() > 0


def test_fixed_pretrained_teacher(tmp_path):
    cfg = pkkd_cfg()
    cnn = MODELS.build(cfg['teacher'])
    cnn.init_weights()
    ckpt = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': cnn.state_dict()}, ckpt)
    with pytest.raises(ValueError, match='teacher_ckpt'):
        MODELS.build(pkkd_cfg(teacher_trainable=False))
    model = MODELS.build(
        pkkd_cfg(teacher_ckpt=ckpt, teacher_trainable=False))
    model.init_weights()
    for key, value in cnn.state_dict().items():
        assert torch.equal(model.teacher.state_dict()[key], value), key
    model.train()
    assert not model.teacher.training and model.student.training
    losses = model(*batch(), mode='loss')
    assert 'teacher.loss_cls' not in losses
    sum(losses.values()).backward()
    assert all(p.grad is None for p in model.teacher.parameters())


def test_autocast_bfloat16():
    model = MODELS.build(pkkd_cfg())
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = model(*batch(), mode='loss')
    assert all(v.dtype == torch.float32 for v in losses.values())
    assert all(torch.isfinite(v) for v in losses.values())


def test_predict_reports_student_and_teacher():
    model = MODELS.build(pkkd_cfg()).eval()
    inputs, samples = batch(6)
    out = model(inputs, samples, mode='predict')
    with torch.no_grad():
        s_logits = model.student(inputs, mode='tensor')
        t_logits = model.teacher(inputs, mode='tensor')
    for i, sample in enumerate(out):
        torch.testing.assert_close(sample.pred_score, s_logits[i].softmax(0))
        torch.testing.assert_close(sample.teacher_pred_score,
                                   t_logits[i].softmax(0))
    metric = TeacherAccuracy(topk=(1, ))
    metric.process(None, [s.to_dict() for s in out])
    labels = torch.cat([s.gt_label for s in out])
    expected = (t_logits.argmax(1) == labels).float().mean().item() * 100
    assert metric.compute_metrics(metric.results)['top1'] == \
        pytest.approx(expected)
