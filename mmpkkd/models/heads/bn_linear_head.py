"""AdderNet's classifier: a bias-free linear layer followed by BN on logits."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmpretrain.models.heads import ClsHead

from mmpkkd.registry import MODELS


@MODELS.register_module()
class BNLinearClsHead(ClsHead):
    """Linear classifier whose logits are batch-normalised.

    AdderNet ends its ANNs with a 1x1 conv (no bias) to ``num_classes``
    followed by ``BatchNorm`` on the logits, because the scale of adder
    features is far from that of conv features. On a pooled (N, C) feature
    the 1x1 conv is exactly a bias-free linear layer, which is what this
    head uses (parameter ``fc.weight``), plus ``bn`` (affine BatchNorm1d).

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Feature channels.
        **kwargs: Other arguments of :class:`mmpretrain.models.ClsHead`
            (``loss``, ``topk``, ``cal_acc``, ``init_cfg``).

    Example:
        >>> head = BNLinearClsHead(10, 64)
        >>> head((torch.randn(4, 64), )).shape
        torch.Size([4, 10])
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 init_cfg: Optional[dict] = dict(
                     type='Normal', layer='Linear', std=0.01),
                 **kwargs):
        super().__init__(init_cfg=init_cfg, **kwargs)
        if num_classes <= 0:
            raise ValueError(f'num_classes must be positive, got '
                             f'{num_classes}.')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.fc = nn.Linear(in_channels, num_classes, bias=False)
        self.bn = nn.BatchNorm1d(num_classes)

    def pre_logits(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        return feats[-1]

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        return self.bn(self.fc(self.pre_logits(feats)))
