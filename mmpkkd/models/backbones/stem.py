"""Helpers shared by the backbones: stem conv config, adder-aware init."""
from typing import Optional

#: Default initialisation of our backbones. MMEngine matches ``layer`` by
#: class *and base-class* name, so ``Kaiming`` on 'Conv2d' also hits
#: ``Adder2d``; the ``Normal`` entry after it restores AdderNet's N(0, 1)
#: filters, whose scale matches the BN-normalised inputs of an adder layer
#: (Kaiming-scaled filters are ~10x smaller than the inputs they are
#: compared with, and the adaptive learning rate then moves them by a large
#: fraction of their size each step).
ADDER_AWARE_INIT = [
    dict(type='Kaiming', layer=['Conv2d']),
    dict(type='Normal', layer=['Adder2d'], mean=0.0, std=1.0),
    dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm']),
]


class StemConvCfgMixin:
    """Let an mmpretrain ResNet build its stem with ``stem_conv_cfg``.

    mmpretrain's ResNets build every conv, stem included, from one
    ``conv_cfg``. Adder networks keep the stem multiplicative (AdderNet), so
    the stem is built with ``stem_conv_cfg`` (None: a plain ``nn.Conv2d``)
    while ``conv_cfg`` applies to the residual blocks and their shortcuts.
    The subclass must set ``self.stem_conv_cfg`` before calling the
    backbone's ``__init__``.
    """

    stem_conv_cfg: Optional[dict] = None

    def _make_stem_layer(self, in_channels: int, stem_channels: int) -> None:
        block_conv_cfg, self.conv_cfg = self.conv_cfg, self.stem_conv_cfg
        try:
            super()._make_stem_layer(in_channels, stem_channels)
        finally:
            self.conv_cfg = block_conv_cfg
