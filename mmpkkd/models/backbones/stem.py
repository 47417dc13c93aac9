"""Build a backbone's stem with its own ``conv_cfg``."""
from typing import Optional


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
