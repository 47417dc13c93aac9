"""``L_mid`` of PKKD (Eq. 13): distance of kernel-mapped features."""
from typing import Sequence

import torch
import torch.nn as nn

from mmpkkd.registry import MODELS

REDUCTIONS = ('mean', 'sum')


@MODELS.register_module()
class KernelFeatureLoss(nn.Module):
    """``L_mid = loss_weight * sum_m d(y_a^m, y_c^m)`` over M layer pairs.

    Eq. 13 sums squared L2 distances; the paper leaves its normalisation
    open, and it sets the term's strength by orders of magnitude:

    * ``reduction='mean'``: ``d`` is the mean of ``(y_a - y_c)^2`` over all
      elements of the layer (batch, channels, positions). The value does not
      grow with batch or feature size and layers of every resolution weigh
      alike.
    * ``reduction='sum'``: Eq. 13 as written, ``d`` is the squared L2 norm
      of ``y_a - y_c`` per image (a sum over C x H x W), averaged over the
      batch. For a ResNet-20's distilled layers that is 4,096-16,384 times
      ``'mean'``, and deeper layers weigh less (fewer positions).

    ``loss_weight`` is PKKD's ``beta``. Gradients flow into both arguments:
    the caller decides what is a fixed target (the distiller computes the
    teacher's kernel features without gradient, so only a teacher-side
    connector learns from this loss).

    Args:
        loss_weight (float): ``beta``. Defaults to 1.0.
        reduction (str): ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.

    Example:
        >>> s, t = [torch.ones(2, 4, 3, 3)], [torch.zeros(2, 4, 3, 3)]
        >>> KernelFeatureLoss(loss_weight=0.5)(s, t)  # (N, C, H, W) each
        tensor(0.5000)
        >>> KernelFeatureLoss(loss_weight=0.5, reduction='sum')(s, t)
        tensor(18.)
    """

    def __init__(self, loss_weight: float = 1.0, reduction: str = 'mean'):
        super().__init__()
        if loss_weight < 0:
            raise ValueError(f'loss_weight must be >= 0, got {loss_weight}.')
        if reduction not in REDUCTIONS:
            raise ValueError(f'reduction must be one of {REDUCTIONS}, got '
                             f'{reduction!r}.')
        self.loss_weight = loss_weight
        self.reduction = reduction

    def forward(self, student_feats: Sequence[torch.Tensor],
                teacher_feats: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(student_feats) != len(teacher_feats) or not student_feats:
            raise ValueError(
                'KernelFeatureLoss needs the same, non-zero number of student '
                f'and teacher features, got {len(student_feats)} and '
                f'{len(teacher_feats)}.')
        total = sum(
            self._distance(s.float() - t.float())
            for s, t in zip(student_feats, teacher_feats))
        return self.loss_weight * total

    def _distance(self, diff: torch.Tensor) -> torch.Tensor:
        if self.reduction == 'mean':
            return diff.pow(2).mean()
        return diff.pow(2).flatten(1).sum(dim=1).mean()
