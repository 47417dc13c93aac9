from .finite_loss_hook import DivergenceError, FiniteLossHook
from .grad_share_hook import GradShareHook
from .rng_state_hook import RNGStateHook

__all__ = [
    'DivergenceError', 'FiniteLossHook', 'GradShareHook', 'RNGStateHook'
]
