"""``L_mid`` of PKKD (Eq. 13): distance of kernel-mapped features."""
from typing import Sequence

import torch
import torch.nn as nn

from mmpkkd.registry import MODELS


@MODELS.register_module()
class KernelFeatureLoss(nn.Module):
    """``loss_weight * sum_m mean((y_a^m - y_c^m)^2)`` over M layer pairs.

    Eq. 13 sums squared L2 distances; we take the mean over the elements of
    each layer (batch, channels, positions), so the value does not grow
    with batch size or feature size and layers of different resolution
    weigh alike. ``loss_weight`` is PKKD's ``beta``. Gradients flow into
    both arguments: the caller decides what is a fixed target (the distiller
    computes the teacher's kernel features without gradient, so only a
    teacher-side connector learns from this loss).

    Args:
        loss_weight (float): ``beta``. Defaults to 1.0.

    Example:
        >>> loss = KernelFeatureLoss(loss_weight=0.5)
        >>> loss([torch.ones(2, 4, 3, 3)], [torch.zeros(2, 4, 3, 3)])
        tensor(0.5000)
    """

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        if loss_weight < 0:
            raise ValueError(f'loss_weight must be >= 0, got {loss_weight}.')
        self.loss_weight = loss_weight

    def forward(self, student_feats: Sequence[torch.Tensor],
                teacher_feats: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(student_feats) != len(teacher_feats) or not student_feats:
            raise ValueError(
                'KernelFeatureLoss needs the same, non-zero number of student '
                f'and teacher features, got {len(student_feats)} and '
                f'{len(teacher_feats)}.')
        total = sum(((s.float() - t.float())**2).mean()
                    for s, t in zip(student_feats, teacher_feats))
        return self.loss_weight * total
