"""ResNets whose residual blocks can be adder networks."""
from typing import Optional, Sequence

from mmpretrain.models.backbones import ResNet, ResNet_CIFAR
from mmpretrain.models.backbones.resnet import BasicBlock

from mmpkkd.registry import MODELS
from .stem import ADDER_AWARE_INIT, StemConvCfgMixin


@MODELS.register_module()
class CIFARResNet(StemConvCfgMixin, ResNet_CIFAR):
    """The CIFAR ResNets of He et al. 2016 (depth 6n+2, 16/32/64 channels).

    Three stages of ``n`` basic blocks with 16, 32 and 64 channels (strides
    1, 2, 2) after a 3x3 stem; the shortcut that changes shape is a 1x1
    conv + BN (option B, as in AdderNet's ResNet-20). Every conv of the
    blocks and shortcuts is built by ``build_conv_layer(conv_cfg, ...)``, so
    ``conv_cfg=dict(type='Adder2d')`` gives the adder network of AdderNet;
    the stem uses ``stem_conv_cfg`` and stays a real conv by default.
    Module names are mmpretrain's: ``conv1``/``norm1`` (stem),
    ``layer1..layer3`` (stages) and ``layer{i}.{j}`` (blocks), stable hook
    points for distillation.

    Args:
        depth (int): One of 20, 32, 44, 56, 110.
        conv_cfg (dict, optional): Conv config of the blocks and shortcuts.
        stem_conv_cfg (dict, optional): Conv config of the stem. Defaults to
            None (``nn.Conv2d``).
        out_indices (Sequence[int]): Stages to output. Defaults to ``(2, )``.
        init_cfg (list): Defaults to :data:`ADDER_AWARE_INIT` (AdderNet's
            N(0, 1) filters for adder layers).
        **kwargs: Other arguments of :class:`mmpretrain.models.ResNet`.

    Example:
        >>> net = CIFARResNet(20, conv_cfg=dict(type='Adder2d'))
        >>> [o.shape for o in net(torch.randn(2, 3, 32, 32))]
        [torch.Size([2, 64, 8, 8])]
    """

    arch_settings = {
        20: (BasicBlock, (3, 3, 3)),
        32: (BasicBlock, (5, 5, 5)),
        44: (BasicBlock, (7, 7, 7)),
        56: (BasicBlock, (9, 9, 9)),
        110: (BasicBlock, (18, 18, 18)),
    }

    def __init__(self,
                 depth: int,
                 conv_cfg: Optional[dict] = None,
                 stem_conv_cfg: Optional[dict] = None,
                 out_indices: Sequence[int] = (2, ),
                 **kwargs):
        if depth not in self.arch_settings:
            raise KeyError(
                f'CIFARResNet depth must be one of '
                f'{sorted(self.arch_settings)} (6n+2), got {depth}.')
        self.stem_conv_cfg = stem_conv_cfg
        defaults = dict(
            stem_channels=16,
            base_channels=16,
            num_stages=3,
            strides=(1, 2, 2),
            dilations=(1, 1, 1),
            init_cfg=ADDER_AWARE_INIT)
        super().__init__(
            depth, conv_cfg=conv_cfg, out_indices=out_indices,
            **{**defaults, **kwargs})


@MODELS.register_module()
class StemConvResNet(StemConvCfgMixin, ResNet):
    """mmpretrain's ImageNet ResNet with a separately configured stem.

    Identical to :class:`mmpretrain.models.ResNet` except that the stem is
    built from ``stem_conv_cfg`` (None: ``nn.Conv2d``), so
    ``conv_cfg=dict(type='Adder2d')`` turns every block conv and shortcut
    into an adder layer while the 7x7 stem stays multiplicative.

    Args:
        depth (int): 18, 34, 50, 101 or 152.
        conv_cfg (dict, optional): Conv config of the blocks and shortcuts.
        stem_conv_cfg (dict, optional): Conv config of the stem.
        init_cfg (list): Defaults to :data:`ADDER_AWARE_INIT`.
        **kwargs: Other arguments of :class:`mmpretrain.models.ResNet`.

    Example:
        >>> net = StemConvResNet(18, conv_cfg=dict(type='Adder2d'))
        >>> type(net.conv1).__name__, type(net.layer1[0].conv1).__name__
        ('Conv2d', 'Adder2d')
    """

    def __init__(self,
                 depth: int,
                 conv_cfg: Optional[dict] = None,
                 stem_conv_cfg: Optional[dict] = None,
                 **kwargs):
        self.stem_conv_cfg = stem_conv_cfg
        kwargs.setdefault('init_cfg', ADDER_AWARE_INIT)
        super().__init__(depth, conv_cfg=conv_cfg, **kwargs)
