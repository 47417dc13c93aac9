from .feature_capture import FeatureCapture, LayerRecord
from .kernels import (GaussianKernel, IdentityKernel, LaplaceKernel,
                      build_layer_kernels)
from .layer_check import (check_layer_pairs, conv_layer_names,
                          resolve_layer_pairs)
from .pkkd import PKKDDistiller
from .underflow import KernelUnderflowWarning, UnderflowMonitor

__all__ = [
    'FeatureCapture', 'LayerRecord', 'GaussianKernel', 'IdentityKernel',
    'LaplaceKernel', 'build_layer_kernels', 'check_layer_pairs',
    'conv_layer_names', 'resolve_layer_pairs', 'PKKDDistiller',
    'KernelUnderflowWarning', 'UnderflowMonitor'
]
