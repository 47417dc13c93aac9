"""Read, write and compare the random-number-generator states of a process."""
import random
from typing import Any, Dict

import numpy as np
import torch

#: The generators of one process: Python's ``random``, numpy's global
#: generator, torch's CPU generator and (when CUDA is in use) every CUDA
#: device's generator.
RNGState = Dict[str, Any]


def get_rng_state() -> RNGState:
    """The states of this process's global generators.

    Plain tuples, arrays and tensors, so a checkpoint that holds them loads
    with ``torch.load(weights_only=True)``.

    Example:
        >>> state = get_rng_state()
        >>> a = torch.rand(2)
        >>> set_rng_state(state)
        >>> torch.equal(torch.rand(2), a)
        True
    """
    state = {
        'python': random.getstate(),
        'numpy': np.random.get_state(),
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: RNGState) -> None:
    """Put the generators back in ``state`` (from :func:`get_rng_state`)."""
    random.setstate(_as_python_state(state['python']))
    np.random.set_state(state['numpy'])
    # MMEngine resumes with map_location=<device>, which moves these byte
    # tensors to the GPU; the setters want CPU ByteTensors
    torch.set_rng_state(state['torch'].cpu())
    if 'cuda' in state and torch.cuda.is_available():
        # a run saved on more GPUs than this machine has: the first ones
        for device, cuda_state in enumerate(
                state['cuda'][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state.cpu(), device)


def same_rng_state(a: RNGState, b: RNGState) -> bool:
    """Whether two states (e.g. of two ranks) are equal."""
    if a.keys() != b.keys():
        return False
    if tuple(_as_python_state(a['python'])) != tuple(
            _as_python_state(b['python'])):
        return False
    na, nb = a['numpy'], b['numpy']
    if len(na) != len(nb) or not all(
            np.array_equal(x, y) for x, y in zip(na, nb)):
        return False
    if not torch.equal(a['torch'].cpu(), b['torch'].cpu()):
        return False
    ca, cb = a.get('cuda', []), b.get('cuda', [])
    return len(ca) == len(cb) and all(
        torch.equal(x.cpu(), y.cpu()) for x, y in zip(ca, cb))


def _as_python_state(state) -> tuple:
    """``random.setstate`` needs tuples; a loaded state may hold lists."""
    version, internal, gauss = state
    return version, tuple(internal), gauss
