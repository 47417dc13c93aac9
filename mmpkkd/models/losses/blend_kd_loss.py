"""The soft (KD) term of PKKD's ``L_blend`` (Eq. 4)."""
from typing import Dict

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmpkkd.registry import MODELS


@MODELS.register_module()
class BlendKDLoss(nn.Module):
    """``alpha * T^2 * KL(p_t^T || p_s^T)``, the soft term of ``L_blend``.

    (``alpha * KL`` with ``t_squared=False``.)

    ``L_blend`` (Eq. 4) blends this term with the student's supervised loss.
    That supervised loss is the student head's own configured ``loss``
    (cross-entropy, label smoothing, soft Mixup/CutMix targets, its
    ``loss_weight``), computed by the head as in any mmpretrain classifier;
    this module adds only the distillation term.

    The soft term is Hinton's distillation loss: the KL divergence between
    the teacher's and the student's softmax at temperature ``T``, scaled by
    ``T^2`` so its gradient does not shrink with ``T``. Whether Eq. 4 of
    PKKD carries ``T^2`` is left open by the paper: ``t_squared=False``
    drops it, which at ``T = 4`` makes the same ``alpha`` 16 times weaker.
    (Its gradient equals
    that of the soft cross-entropy ``H(p_t^T, p_s^T)``; the KL form is zero
    when the student matches, which makes the log readable.) The teacher
    logits are detached: no gradient reaches the teacher.

    Args:
        alpha (float): Weight of the soft (KD) term. 0 drops it (features
            only). Defaults to 1.0.
        temperature (float): Softmax temperature ``T``. Defaults to 4.0.
        t_squared (bool): Multiply by ``T^2`` (Hinton's scaling). Defaults
            to True.

    Returns:
        dict: ``{'loss_kd': tensor}``, already weighted; empty when
        ``alpha == 0``.

    Example:
        >>> loss = BlendKDLoss(alpha=1.0, temperature=4.0)
        >>> out = loss(torch.randn(8, 10), torch.randn(8, 10))  # (N, C) each
        >>> sorted(out), out['loss_kd'].shape
        (['loss_kd'], torch.Size([]))
    """

    def __init__(self,
                 alpha: float = 1.0,
                 temperature: float = 4.0,
                 t_squared: bool = True):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}.')
        if alpha < 0:
            raise ValueError(f'alpha must be >= 0, got {alpha}.')
        self.alpha = alpha
        self.temperature = temperature
        self.t_squared = t_squared

    def forward(self, student_logits: torch.Tensor,
                teacher_logits: torch.Tensor) -> Dict[str, torch.Tensor]:
        if self.alpha == 0:
            return {}
        t = self.temperature
        log_p_s = F.log_softmax(student_logits.float() / t, dim=1)
        log_p_t = F.log_softmax(teacher_logits.detach().float() / t, dim=1)
        kl = F.kl_div(
            log_p_s, log_p_t, reduction='batchmean', log_target=True)
        scale = t * t if self.t_squared else 1.0
        return {'loss_kd': self.alpha * scale * kl}
