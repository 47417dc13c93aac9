"""The int8 inference form of an adder layer and its BatchNorm.

An adder layer compares every input value with a weight, ``|x - w|``, so
both must sit on one integer grid: one scale ``s`` and one zero point ``z``
per layer, ``x = s * (q - z)``. :func:`shared_grid` builds that grid from a
calibrated input range ``[lo, hi]`` (stretched to hold 0, the value of the
zero padding). :meth:`Int8Adder2d.from_float` then

* clamps the weights into the grid's range and keeps what the clamp cut off
  as a per-channel constant: for every ``x`` in ``[lo, hi]`` and ``w > hi``,
  ``|x - w| = |x - hi| + (w - hi)`` (likewise below ``lo``), so
  ``sum |x - w| = sum |x - clamp(w)| + c`` exactly -- the *lossless range
  clamp* of Nie et al., NeurIPS 2022;
* rounds the clamped weights to int8 codes;
* folds the BatchNorm that reads the layer's output, together with ``s``,
  the clamp constant and the layer's bias, into ``alpha * S + beta`` on the
  exact int32 sum ``S = -sum |q_x - q_w|`` of the int8 kernel.
"""
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn as nn

from mmpkkd.ops.int8 import adder2d_int8_affine, quantize_per_tensor_int8

QMIN, QMAX = -128, 127


class Grid(NamedTuple):
    """One int8 grid: ``real = scale * (code - zero_point)``."""
    scale: float
    zero_point: int

    @property
    def inv_scale(self) -> float:
        """``1 / scale`` rounded to float32, as the kernels use it."""
        return float(1.0 / torch.tensor(self.scale, dtype=torch.float32))

    @property
    def real_range(self) -> Tuple[float, float]:
        """The reals of codes -128 and 127."""
        return (self.scale * (QMIN - self.zero_point),
                self.scale * (QMAX - self.zero_point))


def shared_grid(lo: float, hi: float) -> Grid:
    """The 256-level grid over ``[min(lo, 0), max(hi, 0)]`` with 0 on a code.

    Example:
        >>> shared_grid(0.0, 2.55)   # post-ReLU input: codes -128..127
        Grid(scale=0.009999999776482582, zero_point=-128)
    """
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo <= 0:
        hi = lo + 1e-8  # an all-zero input: any positive step will do
    scale = float(torch.tensor((hi - lo) / (QMAX - QMIN), dtype=torch.float32))
    zero_point = int(round(-lo / scale)) + QMIN
    return Grid(scale, max(QMIN, min(QMAX, zero_point)))


def fold_batchnorm(bn: Optional[nn.modules.batchnorm._BatchNorm],
                   channels: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(A, B)`` in float64 with ``bn(v) = A * v + B`` (eval statistics)."""
    if bn is None:
        return (torch.ones(channels, dtype=torch.float64),
                torch.zeros(channels, dtype=torch.float64))
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(f'{type(bn).__name__} without running statistics '
                         '(track_running_stats=False) cannot be folded into '
                         'an int8 layer; train it with running statistics.')
    std = torch.sqrt(bn.running_var.double() + bn.eps)
    gamma = bn.weight.double() if bn.weight is not None else 1.0
    beta = bn.bias.double() if bn.bias is not None else 0.0
    a = gamma / std
    return a * torch.ones_like(std), beta - a * bn.running_mean.double()


class Int8Adder2d(nn.Module):
    """An adder layer (and the BN after it) on the int8 CPU kernel.

    Float input, float output, like the ``Adder2d`` + ``BatchNorm2d`` pair it
    replaces: the input is quantised on the shared grid (``scale``,
    ``zero_point``), the layer sums ``|q_x - q_w|`` exactly in int32, and
    ``alpha * S + beta`` (per output channel) gives the BN output. All of it
    is one call of :func:`mmpkkd.ops.adder2d_int8_affine`.

    Buffers (saved in the state dict): ``weight_int8`` (C_out, C_in/groups,
    kH, kW) int8, ``alpha``/``beta`` (C_out,) float32, ``scale`` and
    ``zero_point`` (scalars).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation,
            groups: geometry of the float layer.
        folded_bn (str, optional): Name of the BN module folded in (the
            model holds an ``nn.Identity`` there); recorded for saving.

    Example:
        >>> from mmpkkd.models.layers import Adder2d
        >>> layer, bn = Adder2d(16, 32, 3, padding=1), nn.BatchNorm2d(32)
        >>> q = Int8Adder2d.from_float(layer.eval(), bn.eval(), 0.0, 3.0)
        >>> q(torch.rand(2, 16, 8, 8)).shape
        torch.Size([2, 32, 8, 8])
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: Tuple[int, int],
                 stride: Tuple[int, int] = (1, 1),
                 padding: Tuple[int, int] = (0, 0),
                 dilation: Tuple[int, int] = (1, 1),
                 groups: int = 1,
                 folded_bn: Optional[str] = None):
        super().__init__()
        kh, kw = _pair(kernel_size)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = (kh, kw)
        self.stride, self.padding = _pair(stride), _pair(padding)
        self.dilation, self.groups = _pair(dilation), groups
        self.folded_bn = folded_bn
        self.register_buffer(
            'weight_int8',
            torch.zeros(out_channels, in_channels // groups, kh, kw,
                        dtype=torch.int8))
        self.register_buffer('alpha', torch.ones(out_channels))
        self.register_buffer('beta', torch.zeros(out_channels))
        self.register_buffer('scale', torch.tensor(1.0))
        self.register_buffer('zero_point', torch.tensor(0, dtype=torch.int32))

    @classmethod
    def like(cls, adder: nn.Conv2d, folded_bn: Optional[str] = None
             ) -> 'Int8Adder2d':
        """An empty layer with ``adder``'s geometry (to load a state dict)."""
        if adder.padding_mode != 'zeros' or isinstance(adder.padding, str):
            raise ValueError('Int8Adder2d needs numeric zero padding, got '
                             f'padding={adder.padding!r}, padding_mode='
                             f'{adder.padding_mode!r}')
        return cls(adder.in_channels, adder.out_channels, adder.kernel_size,
                   adder.stride, adder.padding, adder.dilation, adder.groups,
                   folded_bn)

    @classmethod
    def from_float(cls,
                   adder: nn.Conv2d,
                   bn: Optional[nn.modules.batchnorm._BatchNorm],
                   lo: float,
                   hi: float,
                   folded_bn: Optional[str] = None) -> 'Int8Adder2d':
        """Quantise ``adder`` (+ ``bn``) for inputs clipped to ``[lo, hi]``.

        Args:
            adder: The float adder layer (``weight``, optional ``bias``).
            bn: The BatchNorm that reads its output, or None.
            lo, hi: Calibrated input range (0 is added to it).
            folded_bn: Name of ``bn`` in the model, for the record.
        """
        layer = cls.like(adder, folded_bn)
        grid = shared_grid(lo, hi)
        s = grid.scale
        rlo, rhi = grid.real_range
        w = adder.weight.detach().double().cpu()
        w_in = w.clamp(rlo, rhi)
        # lossless range clamp: the cut-off part is a constant per channel
        cut = (w - w_in).abs().sum((1, 2, 3))
        codes = torch.round(w_in / s) + grid.zero_point
        a, b = fold_batchnorm(bn, adder.out_channels)
        bias = (adder.bias.detach().double().cpu()
                if adder.bias is not None else torch.zeros_like(cut))
        with torch.no_grad():
            layer.weight_int8.copy_(codes.clamp_(QMIN, QMAX).to(torch.int8))
            layer.alpha.copy_((a.cpu() * s).float())
            layer.beta.copy_((a.cpu() * (bias - cut) + b.cpu()).float())
            layer.scale.fill_(s)
            layer.zero_point.fill_(grid.zero_point)
        return layer

    @property
    def grid(self) -> Grid:
        return Grid(float(self.scale), int(self.zero_point))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = self.grid
        return adder2d_int8_affine(
            x.float(), self.weight_int8, grid.inv_scale, grid.zero_point,
            self.alpha, self.beta, self.stride, self.padding, self.dilation,
            self.groups)

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        """The int8 codes the kernel computes for ``x`` (for inspection)."""
        grid = self.grid
        return quantize_per_tensor_int8(x, grid.inv_scale, grid.zero_point)

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, kernel_size='
                f'{self.kernel_size}, stride={self.stride}, padding='
                f'{self.padding}, dilation={self.dilation}, groups='
                f'{self.groups}, scale={float(self.scale):.4g}, zero_point='
                f'{int(self.zero_point)}, folded_bn={self.folded_bn!r}')


def _pair(v) -> Tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))
