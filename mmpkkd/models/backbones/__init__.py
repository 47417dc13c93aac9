from .resnet import CIFARResNet, StemConvResNet
from .stem import ADDER_AWARE_INIT, StemConvCfgMixin
from .vgg_small import VGGSmall

__all__ = ['ADDER_AWARE_INIT', 'CIFARResNet', 'StemConvResNet', 'StemConvCfgMixin', 'VGGSmall']
