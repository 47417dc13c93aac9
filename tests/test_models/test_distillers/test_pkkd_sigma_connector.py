"""PKKD options: sigma per layer, the underflow warning, connector sides."""
import math
import warnings

import pytest
import torch
import torch.nn as nn
from pkkd_helpers import batch, pkkd_cfg

from mmpkkd.models.connectors import ConvConnector
from mmpkkd.models.distillers import (KernelUnderflowWarning, LaplaceKernel,
                                      LayerRecord, UnderflowMonitor,
                                      build_layer_kernels)
from mmpkkd.models.layers import Adder2d
from mmpkkd.registry import MODELS

LAYERS = ['backbone.layer1.2.conv2', 'backbone.layer2.2.conv2',
          'backbone.layer3.2.conv2']


pytestmark = pytest.mark.usefixtures('mmpkkd_scope')


def adder_record(xs):
    """A 1x1 adder with filter 1 on pixels ``xs``: distances ``|x - 1|``."""
    adder = Adder2d(1, 1, 1)
    with torch.no_grad():
        adder.weight.fill_(1.0)
    x = torch.tensor(xs, dtype=torch.float32).view(1, 1, 1, -1)
    return LayerRecord(adder, x, adder(x))


# ------------------------------------------------------------------ sigma
def test_sigma_per_layer_by_hand():
    kernels = build_layer_kernels(
        dict(type='LaplaceKernel', sigma=[4.0, 0.5, 'auto']),
        ['a', 'b', 'c'], 'student_kernel')
    assert [k.sigma for k in kernels] == [4.0, 0.5, 'auto']
    record = adder_record([3.0, 0.0])  # distances 2 and 1
    assert kernels[0](record).flatten().tolist() == pytest.approx(
        [math.exp(-2 / 4.0), math.exp(-1 / 4.0)])
    assert kernels[1](record).flatten().tolist() == pytest.approx(
        [math.exp(-2 / 0.5), math.exp(-1 / 0.5)])
    # auto: sigma = mean distance 1.5
    assert kernels[2](record).flatten().tolist() == pytest.approx(
        [math.exp(-2 / 1.5), math.exp(-1 / 1.5)])
    shared = build_layer_kernels(
        dict(type='LaplaceKernel', sigma=2.0), ['a', 'b'], 'student_kernel')
    assert [k.sigma for k in shared] == [2.0, 2.0]


def test_sigma_list_in_a_distiller_config():
    model = MODELS.build(
        pkkd_cfg(
            student_kernel=dict(type='LaplaceKernel', sigma=[100, 200, 400]),
            teacher_kernel=dict(type='GaussianKernel', sigma=[1., 'auto',
                                                              3.])))
    assert [k.sigma for k in model.student_kernels] == [100.0, 200.0, 400.0]
    assert [k.sigma for k in model.teacher_kernels] == [1.0, 'auto', 3.0]
    with pytest.raises(ValueError, match='2 values but 3 layers'):
        MODELS.build(
            pkkd_cfg(student_kernel=dict(type='LaplaceKernel',
                                         sigma=[1.0, 2.0])))
    with pytest.raises(ValueError, match='one value per distilled layer'):
        LaplaceKernel(sigma=[1.0, 2.0])
    with pytest.raises(ValueError, match="'auto' or a positive"):
        LaplaceKernel(sigma=0.0)


def test_underflow_warning_by_hand():
    """exp(-d / 1) is 0 in float32 for d = 200 but not for d = 50."""
    kernel = LaplaceKernel(sigma=1.0)
    mostly_zero = kernel(adder_record([2.0, 201.0, 301.0, 401.0]))
    assert mostly_zero.flatten().tolist() == [pytest.approx(math.exp(-1)),
                                              0.0, 0.0, 0.0]
    quarter_zero = kernel(adder_record([2.0, 3.0, 51.0, 401.0]))
    assert (quarter_zero == 0).sum().item() == 1
    half_zero = kernel(adder_record([2.0, 3.0, 201.0, 401.0]))
    monitor = UnderflowMonitor()
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # 1/4 and exactly 1/2: no warning
        monitor.check('student', ['a', 'b'], [quarter_zero, half_zero],
                      [kernel, kernel])
    with pytest.warns(KernelUnderflowWarning) as caught:
        monitor.check('student', ['a', 'c'], [quarter_zero, mostly_zero],
                      [kernel, kernel])
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "75% of the student kernel values of layer 'c'" in message
    assert 'sigma=1.0' in message
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # once per layer
        monitor.check('student', ['c'], [mostly_zero], [kernel])


def test_fixed_small_sigma_warns_once_per_layer_in_training():
    model = MODELS.build(
        pkkd_cfg(student_kernel=dict(type='LaplaceKernel', sigma=1.0)))
    model.init_weights()
    model.train()
    with pytest.warns(KernelUnderflowWarning) as caught:
        model(*batch(), mode='loss')
    named = sorted(
        name for name in LAYERS
        if any(repr(name) in str(w.message) for w in caught
               if issubclass(w.category, KernelUnderflowWarning)))
    assert named == sorted(LAYERS)  # adder distances are in the hundreds
    with warnings.catch_warnings():
        warnings.simplefilter('error', KernelUnderflowWarning)
        model(*batch(), mode='loss')
    # 'auto' keeps the mean exponent at -1: no warning
    auto = MODELS.build(pkkd_cfg())
    auto.init_weights()
    with warnings.catch_warnings():
        warnings.simplefilter('error', KernelUnderflowWarning)
        auto(*batch(), mode='loss')


# -------------------------------------------------------------- connector
@pytest.mark.parametrize('side,n_student,n_teacher', [('student', 3, 0),
                                                      ('teacher', 0, 3),
                                                      ('both', 3, 3),
                                                      ('none', 0, 0)])
def test_connector_sides(side, n_student, n_teacher):
    torch.manual_seed(0)
    model = MODELS.build(pkkd_cfg(connector=side))  # 16/32/64 channels
    model.init_weights()
    model.train()
    assert len(model.student_connectors) == n_student
    assert len(model.teacher_connectors) == n_teacher
    for conn in [*model.student_connectors, *model.teacher_connectors]:
        assert isinstance(conn, ConvConnector)
        assert conn.kernel_size == (1, 1)
    inputs, samples = batch()
    losses = model(inputs, samples, mode='loss')
    teacher_params = dict(model.teacher.named_parameters())
    own_grads = torch.autograd.grad(
        losses['teacher.loss_cls'], list(teacher_params.values()),
        retain_graph=True)
    sum(losses.values()).backward()
    for (name, param), grad in zip(teacher_params.items(), own_grads):
        assert torch.equal(param.grad, grad), name  # only its own loss
    for conn in [*model.student_connectors, *model.teacher_connectors]:
        assert conn.weight.grad.abs().sum() > 0  # learns from L_mid


def test_teacher_connector_maps_teacher_to_student_channels():
    """A twice-as-wide teacher: 128 teacher channels -> 64 student ones."""
    teacher = pkkd_cfg()['teacher']
    teacher['backbone']['base_channels'] = 32
    teacher['head']['in_channels'] = 128
    model = MODELS.build(
        pkkd_cfg(connector='teacher', teacher=teacher,
                 distill_layers=['backbone.layer3.2.conv2']))
    conn = model.teacher_connectors[0]
    assert (conn.in_channels, conn.out_channels) == (128, 64)
    inputs, samples = batch()
    losses = model(inputs, samples, mode='loss')
    assert torch.isfinite(losses['student.loss_mid'])
    with pytest.raises(ValueError, match="connector='none'"):
        MODELS.build(
            pkkd_cfg(connector='none', teacher=teacher,
                     distill_layers=['backbone.layer3.2.conv2']))


def test_connector_swapped_from_config():
    model = MODELS.build(
        pkkd_cfg(connector_cfg=dict(type='ConvConnector', kernel_size=3)))
    assert model.student_connectors[0].weight.shape == (16, 16, 3, 3)
    # any registered module with (in_channels, out_channels): mmcv's Conv2d
    model = MODELS.build(
        pkkd_cfg(connector='teacher',
                 connector_cfg=dict(type='Conv2d', kernel_size=1,
                                    bias=False)))
    conn = model.teacher_connectors[2]
    assert type(conn) is nn.Conv2d and conn.bias is None
    assert conn.weight.shape == (64, 64, 1, 1)
    losses = model(*batch(), mode='loss')
    assert torch.isfinite(losses['student.loss_mid'])


def test_old_connector_config_keeps_its_parameters():
    cfg = pkkd_cfg()
    cfg.pop('connector_cfg')
    model = MODELS.build(cfg)
    keys = [k for k in model.state_dict() if 'connectors' in k]
    assert keys == [f'student_connectors.{i}.{p}' for i in range(3)
                    for p in ('weight', 'bias')]
    with pytest.raises(ValueError, match="'teacher'"):
        MODELS.build(pkkd_cfg(connector='left'))
    with pytest.raises(ValueError, match='odd kernel_size'):
        ConvConnector(4, 4, kernel_size=2)
