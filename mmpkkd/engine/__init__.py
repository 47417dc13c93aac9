"""Training machinery: hooks, optimizer wrappers and checkpoint files.

Importing it installs the weights-only checkpoint loaders in MMEngine
(:func:`~.checkpoint.register_checkpoint_loaders`), for every scheme MMEngine
knows.
"""
from .checkpoint import (ALLOWED_GLOBALS, AtomicCheckpointHook,
                         CheckpointError, load_checkpoint_file,
                         register_checkpoint_loaders, safe_torch_load)
from .hooks import DivergenceError, FiniteLossHook, RNGStateHook
from .optimizers import AdderOptimWrapper, AmpAdderOptimWrapper

__all__ = [
    'ALLOWED_GLOBALS', 'AtomicCheckpointHook', 'CheckpointError',
    'load_checkpoint_file', 'register_checkpoint_loaders', 'safe_torch_load',
    'DivergenceError', 'FiniteLossHook', 'RNGStateHook', 'AdderOptimWrapper',
    'AmpAdderOptimWrapper'
]

register_checkpoint_loaders()
