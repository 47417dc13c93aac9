from .blend_kd_loss import BlendKDLoss
from .kernel_feature_loss import KernelFeatureLoss

__all__ = ['BlendKDLoss', 'KernelFeatureLoss']
