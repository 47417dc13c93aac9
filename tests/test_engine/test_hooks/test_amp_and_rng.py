"""RNG state round trip (AMP and the adaptive lr: test_adaptive_lr.py)."""
import random

import numpy as np
import torch

from mmpkkd.engine import RNGStateHook


def test_rng_state_hook_round_trip():
    hook, checkpoint = RNGStateHook(), {}
    hook.before_save_checkpoint(None, checkpoint)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.random(), np.random.rand(), torch.rand(3)  # move on
    hook.after_load_checkpoint(None, checkpoint)
    assert (random.random(), np.random.rand(),
            torch.rand(1).item()) == expected
