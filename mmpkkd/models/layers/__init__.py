from .adaptive_lr import (AdaptiveLRError, UnscaledAdderGradWarning,
                          rescale_adder_grads)
from .adder2d import Adder2d

__all__ = [
    'Adder2d', 'AdaptiveLRError', 'UnscaledAdderGradWarning',
    'rescale_adder_grads'
]
