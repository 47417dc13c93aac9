"""Configs in scope 'mmpkkd' reach mmpretrain, mmcv and mmengine modules."""
import pytest
import torch.nn as nn
from mmcv.cnn import build_conv_layer
from mmengine.registry import DefaultScope

from mmpkkd.models.layers import Adder2d
from mmpkkd.registry import (EVALUATORS, METRICS, MODELS, OPTIMIZERS,
                             PARAM_SCHEDULERS)


@pytest.fixture(autouse=True)
def scope():
    name = 'test_registry_scope'
    DefaultScope.get_instance(name, scope_name='mmpkkd')
    yield
    DefaultScope._instance_dict.pop(name, None)


@pytest.mark.parametrize('registry,name,module', [
    (MODELS, 'ResNet', 'mmpretrain'),
    (MODELS, 'CrossEntropyLoss', 'mmpretrain'),
    (MODELS, 'CIFARResNet', 'mmpkkd'),
    (MODELS, 'PKKDDistiller', 'mmpkkd'),
    (OPTIMIZERS, 'SGD', 'torch'),
    (PARAM_SCHEDULERS, 'CosineAnnealingLR', 'mmengine'),
    (METRICS, 'Accuracy', 'mmpretrain'),
    (METRICS, 'TeacherAccuracy', 'mmpkkd'),
])
def test_types_resolve_from_mmpkkd_scope(registry, name, module):
    cls = registry.get(name)
    assert cls is not None, f'{name} not found from scope mmpkkd'
    assert cls.__module__.startswith(module)


def test_unknown_type_names_registry_and_scope():
    with pytest.raises(KeyError, match=r'mmpkkd::model registry'):
        MODELS.build(dict(type='ResNet2000'))
    assert EVALUATORS.scope == 'mmpkkd'


@pytest.mark.parametrize('scope_name', ['mmpkkd', 'mmpretrain', 'mmengine'])
def test_build_conv_layer_adder_from_any_scope(scope_name):
    with DefaultScope.overwrite_default_scope(scope_name):
        layer = build_conv_layer(
            dict(type='Adder2d'), 4, 8, 3, stride=2, padding=1, bias=False)
    assert isinstance(layer, Adder2d) and isinstance(layer, nn.Conv2d)
    assert layer.weight.shape == (8, 4, 3, 3) and layer.bias is None
    assert layer.stride == (2, 2) and layer.padding == (1, 1)
