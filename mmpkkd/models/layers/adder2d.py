"""The adder convolution layer, buildable through mmcv's ``build_conv_layer``."""
from typing import Tuple, Union

import torch
import torch.nn as nn
from mmengine.registry import MODELS as MMENGINE_MODELS

from mmpkkd.ops import adder2d
from .adaptive_lr import register_adder_layer

_IntOrPair = Union[int, Tuple[int, int]]


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
    HardTanh-clipped ``W - X`` for the input, see :mod:`mmpkkd.ops`); the
    op's gradient is AdderNet's unscaled one. Filters start as N(0, 1), as in
    AdderNet (keep that when a backbone's ``init_cfg`` applies Kaiming to
    'Conv2d', see ``ADDER_AWARE_INIT``).

    AdderNet's layer-wise adaptive learning rate (``eta``, ``adaptive_lr``)
    is applied once per optimizer step on the final gradient, not in this
    layer's backward: by :class:`~mmpkkd.engine.AdderOptimWrapper` (set by
    every shipped config) or, in a plain PyTorch loop, by
    :func:`~mmpkkd.models.rescale_adder_grads` between ``backward()`` and
    ``step()``. So DDP, gradient accumulation and AMP loss scales do not
    change the update (see :mod:`mmpkkd.models.layers.adaptive_lr`). The
    layer, not its weight Parameter, is what the optimizer step looks up, so
    code that replaces the Parameter (meta-device init and ``to_empty``,
    ``load_state_dict(assign=True)``, FSDP) keeps the adaptive lr.

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
        adaptive_lr (bool): Let the optimizer step rescale the weight
            gradient to norm ``eta * sqrt(numel(W))``. Defaults to True.

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
        register_adder_layer(self)

    def __setstate__(self, state: dict) -> None:
        """Register an unpickled or deep-copied layer for the adaptive lr."""
        super().__setstate__(state)
        register_adder_layer(self)

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
        return adder2d(x, self.weight, self.bias, self.stride, self.padding,
                       self.dilation, self.groups)

    def extra_repr(self) -> str:
        return (super().extra_repr() +
                f', eta={self.eta}, adaptive_lr={self.adaptive_lr}')
