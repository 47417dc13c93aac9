from .hooks import RNGStateHook
from .optimizers import AdderOptimWrapper, AmpAdderOptimWrapper
from .safe_checkpoint import (ALLOWED_GLOBALS, CheckpointError,
                              register_safe_checkpoint_loader, safe_torch_load)

__all__ = [
    'RNGStateHook', 'AdderOptimWrapper', 'AmpAdderOptimWrapper',
    'ALLOWED_GLOBALS', 'CheckpointError', 'register_safe_checkpoint_loader',
    'safe_torch_load'
]

register_safe_checkpoint_loader()
