"""Native and reference implementations of the AdderNet adder2d op."""
from .adder2d import Adder2dFallbackWarning, adder2d, native_available
from .reference import adder2d_reference
from .unfold_reference import adder2d_unfold_original

__all__ = [
    'adder2d', 'adder2d_reference', 'adder2d_unfold_original',
    'native_available', 'Adder2dFallbackWarning'
]
