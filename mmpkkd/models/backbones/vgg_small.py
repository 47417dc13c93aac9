"""VGG-small, the CIFAR network of the AdderNet and PKKD papers."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmpretrain.models.backbones.base_backbone import BaseBackbone

from mmpkkd.registry import MODELS
from .stem import ADDER_AWARE_INIT


@MODELS.register_module()
class VGGSmall(BaseBackbone):
    """VGG-small: three stages of two 3x3 conv-BN-ReLU and a 2x2 max-pool.

    Channels 128-128 / 256-256 / 512-512 on 32x32 inputs, as used for
    CIFAR in AdderNet (after LQ-Nets); the classifier is a linear layer on
    the flattened 512x4x4 map, so the backbone returns the flattened
    feature (8192 values) as its single output. The first conv is built
    from ``stem_conv_cfg`` (a real conv by default) and every other conv
    from ``conv_cfg`` (``dict(type='Adder2d')`` for the ANN). Module names:
    ``stem`` (first conv), ``stage1.0`` (second conv), ``stage1`` ..
    ``stage3`` (stage outputs after pooling).

    Args:
        in_channels (int): Input channels. Defaults to 3.
        channels (Sequence[int]): Channels of the three stages.
        conv_cfg (dict, optional): Conv config of all but the first conv.
        stem_conv_cfg (dict, optional): Conv config of the first conv.
        norm_cfg (dict): Norm config. Defaults to ``dict(type='BN')``.
        init_cfg (dict | list, optional): Initialisation config. Defaults
            to :data:`ADDER_AWARE_INIT`.

    Example:
        >>> net = VGGSmall(conv_cfg=dict(type='Adder2d'))
        >>> net(torch.randn(2, 3, 32, 32))[0].shape
        torch.Size([2, 8192])
    """

    def __init__(self,
                 in_channels: int = 3,
                 channels: Sequence[int] = (128, 256, 512),
                 conv_cfg: Optional[dict] = None,
                 stem_conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg=ADDER_AWARE_INIT):
        super().__init__(init_cfg=init_cfg)

        def block(cin: int, cout: int, cfg: Optional[dict]) -> ConvModule:
            return ConvModule(
                cin, cout, 3, padding=1, conv_cfg=cfg, norm_cfg=norm_cfg)

        self.stem = block(in_channels, channels[0], stem_conv_cfg)
        prev = channels[0]
        for i, width in enumerate(channels, start=1):
            first_in = channels[0] if i == 1 else prev
            stage = nn.Sequential(
                *([] if i == 1 else [block(first_in, width, conv_cfg)]),
                block(width, width, conv_cfg), nn.MaxPool2d(2))
            self.add_module(f'stage{i}', stage)
            prev = width

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor]:
        x = self.stem(x)
        x = self.stage3(self.stage2(self.stage1(x)))
        return (x.flatten(1), )
