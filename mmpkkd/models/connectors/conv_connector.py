"""The learnable 1x1 conv that aligns kernel-mapped features (Eqs. 11-12)."""
import torch.nn as nn

from mmpkkd.registry import MODELS


@MODELS.register_module()
class ConvConnector(nn.Conv2d):
    """A ``kernel_size`` conv (1x1 by default) that keeps the spatial size.

    :class:`~mmpkkd.models.PKKDDistiller` builds one per distilled layer and
    per side that carries a connector (``connector='student' | 'teacher' |
    'both'``), filling in ``in_channels`` and ``out_channels``; the rest of
    ``connector_cfg`` is passed here. It is a plain ``nn.Conv2d`` (same
    parameter names, ``weight`` and ``bias``), padded so that odd kernel
    sizes keep ``H x W``.

    Any registered module with the same ``(in_channels, out_channels)``
    signature that maps ``(N, in_channels, H, W)`` to
    ``(N, out_channels, H, W)`` can replace it through ``connector_cfg``.

    Args:
        in_channels (int): Channels of the kernel-mapped feature.
        out_channels (int): Channels it is mapped to.
        kernel_size (int): Odd kernel size. Defaults to 1 (the paper's).
        bias (bool): Learn a bias. Defaults to True.

    Example:
        >>> conn = ConvConnector(16, 32)
        >>> conn(torch.rand(2, 16, 8, 8)).shape
        torch.Size([2, 32, 8, 8])
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int = 1,
                 bias: bool = True):
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError('ConvConnector needs an odd kernel_size so that '
                             f'it keeps H x W, got {kernel_size}.')
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            padding=kernel_size // 2,
            bias=bias)
