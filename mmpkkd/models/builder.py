"""Building a model from its config in the ``mmpkkd`` scope.

A model config of this project mixes its own parts (``Adder2d``,
``PKKDDistiller``, ``BNLinearClsHead``) with mmpretrain's
(``ImageClassifier``, ``ResNet_CIFAR``). mmpretrain's classes build their
parts in whatever default scope is current, and in ``'mmpretrain'`` this
project's parts are unknown. :func:`build_model` sets the ``mmpkkd`` scope
for the build, so every ``type`` is looked up in mmpkkd's registry first
and falls through to mmpretrain's and MMEngine's.
"""
import copy
from typing import Union

import torch.nn as nn
from mmengine.config import ConfigDict
from mmengine.registry import DefaultScope

from mmpkkd.registry import MODELS

#: The scope the configs of this project are written in.
SCOPE = 'mmpkkd'


def build_model(cfg: Union[dict, ConfigDict]) -> nn.Module:
    """``MODELS.build(cfg)`` in the ``mmpkkd`` scope, whatever scope is set.

    The config is copied first, so the caller's is never changed by the
    build.

    Args:
        cfg (dict | ConfigDict): A ``model`` config, e.g. ``cfg.model`` of
            a config file.

    Returns:
        nn.Module: The model, as its ``init_cfg`` initialises it, in
        training mode.

    Example:
        >>> model = build_model(dict(
        ...     type='ImageClassifier',
        ...     backbone=dict(type='ResNet_CIFAR', depth=20,
        ...                   conv_cfg=dict(type='Adder2d')),
        ...     neck=dict(type='GlobalAveragePooling'),
        ...     head=dict(type='LinearClsHead', num_classes=10,
        ...               in_channels=64)))
        >>> model(torch.randn(2, 3, 32, 32), mode='tensor').shape
        torch.Size([2, 10])
    """
    with DefaultScope.overwrite_default_scope(SCOPE):
        return MODELS.build(copy.deepcopy(cfg))
