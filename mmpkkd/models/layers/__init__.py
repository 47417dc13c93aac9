from .adaptive_lr import (AdaptiveLRError, UnscaledAdderGradWarning,
                          register_adder_layer, rescale_adder_grads)
from .adder2d import Adder2d

__all__ = [
    'Adder2d', 'AdaptiveLRError', 'UnscaledAdderGradWarning',
    'register_adder_layer', 'rescale_adder_grads'
]
