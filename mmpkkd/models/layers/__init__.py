from .adder2d import Adder2d, adaptive_grad_scale

__all__ = ['Adder2d', 'adaptive_grad_scale']
