"""``L_blend`` of PKKD (Eq. 4): soft teacher targets blended with labels."""
from typing import Dict

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmpkkd.registry import MODELS


@MODELS.register_module()
class BlendKDLoss(nn.Module):
    """``alpha * T^2 * KL(p_t^T || p_s^T) + ce_weight * CE(s, y)``.

    The soft term is Hinton's distillation loss: the KL divergence between
    the teacher's and the student's softmax at temperature ``T``, scaled by
    ``T^2`` so its gradient does not shrink with ``T``. (Its gradient equals
    that of the soft cross-entropy ``H(p_t^T, p_s^T)``; the KL form is zero
    when the student matches, which makes the log readable.) The teacher
    logits are detached: no gradient reaches the teacher.

    Args:
        alpha (float): Weight of the soft (KD) term. Defaults to 1.0.
        temperature (float): Softmax temperature ``T``. Defaults to 4.0.
        ce_weight (float): Weight of the hard-label cross-entropy.

    Returns:
        dict: ``loss_kd`` and ``loss_ce`` (already weighted); their sum is
        ``L_blend``. A zero weight drops the term from the dict.

    Example:
        >>> loss = BlendKDLoss(alpha=1.0, temperature=4.0)
        >>> out = loss(torch.randn(8, 10), torch.randn(8, 10),
        ...            torch.randint(0, 10, (8, )))
        >>> sorted(out)
        ['loss_ce', 'loss_kd']
    """

    def __init__(self,
                 alpha: float = 1.0,
                 temperature: float = 4.0,
                 ce_weight: float = 1.0):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}.')
        if alpha < 0 or ce_weight < 0:
            raise ValueError('alpha and ce_weight must be >= 0, got '
                             f'{alpha} and {ce_weight}.')
        self.alpha = alpha
        self.temperature = temperature
        self.ce_weight = ce_weight

    def forward(self, student_logits: torch.Tensor,
                teacher_logits: torch.Tensor,
                labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        losses = {}
        s = student_logits.float()
        if self.alpha > 0:
            t = self.temperature
            log_p_s = F.log_softmax(s / t, dim=1)
            log_p_t = F.log_softmax(teacher_logits.detach().float() / t, 1)
            kl = F.kl_div(log_p_s, log_p_t, reduction='batchmean',
                          log_target=True)
            losses['loss_kd'] = self.alpha * t * t * kl
        if self.ce_weight > 0:
            losses['loss_ce'] = self.ce_weight * F.cross_entropy(s, labels)
        return losses
