from .hooks import RNGStateHook
from .safe_checkpoint import (ALLOWED_GLOBALS, CheckpointError,
                              register_safe_checkpoint_loader, safe_torch_load)

__all__ = [
    'RNGStateHook', 'ALLOWED_GLOBALS', 'CheckpointError', 'register_safe_checkpoint_loader',
    'safe_torch_load'
]

register_safe_checkpoint_loader()
