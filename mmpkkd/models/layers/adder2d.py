"""The adder convolution layer, buildable through mmcv's ``build_conv_layer``."""
import math
from typing import Tuple, Union

import torch
import torch.nn as nn
from mmengine.registry import MODELS as MMENGINE_MODELS

from mmpkkd.ops import adder2d

_IntOrPair = Union[int, Tuple[int, int]]


class _AdaptiveGradScale(torch.autograd.Function):
    """Identity whose backward rescales the gradient to a fixed L2 norm.

    AdderNet's adaptive learning rate: ``g <- eta * sqrt(numel(g)) * g /
    ||g||_2``, so every adder layer takes steps of comparable size whatever
    the magnitude of its (full-precision) gradient.
    """

    @staticmethod
    def forward(ctx, weight: torch.Tensor, eta: float) -> torch.Tensor:
        ctx.eta = eta
        return weight.view_as(weight)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        norm = grad.norm(p=2).clamp(min=1e-12)
        return grad * (ctx.eta * math.sqrt(grad.numel()) / norm), None


def adaptive_grad_scale(weight: torch.Tensor, eta: float) -> torch.Tensor:
    """Return ``weight`` unchanged; its gradient is rescaled (see above)."""
    return _AdaptiveGradScale.apply(weight, eta)


# Registered in MMEngine's root MODELS registry, beside mmcv's 'Conv2d', so
# ``conv_cfg=dict(type='Adder2d')`` resolves from any default scope.
@MMENGINE_MODELS.register_module('Adder2d')
class Adder2d(nn.Conv2d):
    """Adder "convolution": ``Y = -sum |X_patch - W|`` (AdderNet).

    A drop-in replacement for :class:`torch.nn.Conv2d`; the filter is stored
    as ``weight`` of shape ``(C_out, C_in / groups, kH, kW)`` so MMEngine's
    initialisers and checkpoints treat it like a conv. Zero padding takes
    part in the sum (a padded tap adds ``|0 - w|``). Training uses
    AdderNet's gradients (full-precision ``X - W`` for the weight,
    HardTanh-clipped ``W - X`` for the input, see :mod:`mmpkkd.ops`) and,
    when ``adaptive_lr`` is on, the layer-wise adaptive learning-rate
    scaling of the weight gradient with factor ``eta``. Filters start as
    N(0, 1), as in AdderNet (keep that when a backbone's ``init_cfg`` applies
    Kaiming to 'Conv2d', see ``ADDER_AWARE_INIT``).

    The adaptive scaling fixes the gradient's norm, so it is invariant to a
    loss scale: with mixed precision use bfloat16 and a loss scale of 1 (what
    ``tools/train.py --amp`` does), not a dynamic fp16 loss scaler, whose
    unscaling would then shrink the adder gradients by the scale.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int | tuple): Kernel size.
        stride (int | tuple): Stride. Defaults to 1.
        padding (int | tuple): Zero padding. Defaults to 0.
        dilation (int | tuple): Dilation. Defaults to 1.
        groups (int): Groups. Defaults to 1.
        bias (bool): Add a learnable bias. Defaults to False (a BN follows
            every adder layer).
        eta (float): Adaptive learning-rate factor. Defaults to 0.2, the
            value of the original code.
        adaptive_lr (bool): Rescale the weight gradient to norm
            ``eta * sqrt(numel(W))``. Defaults to True.

    Example:
        >>> layer = Adder2d(16, 32, 3, padding=1)
        >>> layer(torch.randn(2, 16, 8, 8)).shape
        torch.Size([2, 32, 8, 8])
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: _IntOrPair,
                 stride: _IntOrPair = 1,
                 padding: _IntOrPair = 0,
                 dilation: _IntOrPair = 1,
                 groups: int = 1,
                 bias: bool = False,
                 padding_mode: str = 'zeros',
                 eta: float = 0.2,
                 adaptive_lr: bool = True,
                 device=None,
                 dtype=None):
        if padding_mode != 'zeros':
            raise ValueError(
                f"Adder2d supports padding_mode='zeros' only, got "
                f'{padding_mode!r}; pad the input explicitly instead.')
        if isinstance(padding, str):
            raise ValueError(
                f'Adder2d needs numeric padding, got {padding!r}; use e.g. '
                'padding=kernel_size // 2 for "same".')
        if eta <= 0:
            raise ValueError(f'Adder2d eta must be positive, got {eta}.')
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding, dilation, groups, bias, padding_mode,
                         device, dtype)
        self.eta = eta
        self.adaptive_lr = adaptive_lr

    def reset_parameters(self) -> None:
        """AdderNet's initialisation: N(0, 1) filters, zero bias."""
        nn.init.normal_(self.weight, 0.0, 1.0)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def init_weights(self) -> None:
        """Re-apply AdderNet's init when a parent module initialises.

        Defining it also tells mmcv's ``ConvModule`` not to apply its default
        Kaiming init to this layer.
        """
        self.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight
        if self.adaptive_lr and weight.requires_grad:
            weight = adaptive_grad_scale(weight, self.eta)
        return adder2d(x, weight, self.bias, self.stride, self.padding,
                       self.dilation, self.groups)

    def extra_repr(self) -> str:
        return (super().extra_repr() +
                f', eta={self.eta}, adaptive_lr={self.adaptive_lr}')
