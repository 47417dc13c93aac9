from .feature_capture import FeatureCapture, LayerRecord
from .kernels import GaussianKernel, IdentityKernel, LaplaceKernel
from .layer_check import check_layer_pairs, conv_layer_names
from .pkkd import PKKDDistiller

__all__ = [
    'FeatureCapture', 'LayerRecord', 'GaussianKernel', 'IdentityKernel',
    'LaplaceKernel', 'check_layer_pairs', 'conv_layer_names', 'PKKDDistiller'
]
