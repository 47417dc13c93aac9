"""Save and restore random-number-generator states with each checkpoint."""
import random
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook

from mmpkkd.registry import HOOKS


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Make ``--resume`` continue exactly where the checkpoint was written.

    MMEngine seeds the generators once at start-up, so after a resume the
    training process's own random draws (dropout, Mixup/CutMix, any torch
    sampling) would replay the first epoch's random numbers instead of
    continuing the sequence. (Data augmentations do not depend on it: the
    ``SeededSampler`` seeds each sample from (seed, epoch, index), in the
    main process or a worker alike.) This hook stores the Python, numpy and torch (CPU and
    CUDA) generator states in ``checkpoint['rng_state']`` and restores them
    when resuming. The states are plain tensors, arrays and tuples, so the
    safe checkpoint loader accepts them. In distributed runs the state of
    rank 0 is stored (MMEngine seeds every rank alike).

    Example:
        >>> custom_hooks = [dict(type='RNGStateHook')]
    """

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = {
            'python': random.getstate(),
            'numpy': np.random.get_state(),
            'torch': torch.get_rng_state(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint['rng_state'] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state: Optional[dict] = checkpoint.get('rng_state')
        if state is None:
            return
        random.setstate(_as_python_state(state['python']))
        np.random.set_state(state['numpy'])
        # MMEngine resumes with map_location=<device>, which moves these
        # byte tensors to the GPU; the setters want CPU ByteTensors
        torch.set_rng_state(state['torch'].cpu())
        if 'cuda' in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state['cuda']])


def _as_python_state(state) -> tuple:
    """``random.setstate`` needs tuples; a loaded state may hold lists."""
    version, internal, gauss = state
    return version, tuple(internal), gauss
