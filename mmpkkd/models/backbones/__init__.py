from .resnet import CIFARResNet, StemConvResNet
from .stem import StemConvCfgMixin
from .vgg_small import VGGSmall

__all__ = ['CIFARResNet', 'StemConvResNet', 'StemConvCfgMixin', 'VGGSmall']
