"""AdderNet's adaptive learning rate, applied once per optimizer step.

AdderNet rescales the gradient of every adder filter to a fixed L2 norm,
``g <- eta * sqrt(numel(g)) * g / ||g||_2``, so that all adder layers take
steps of comparable size whatever the magnitude of their full-precision
gradient. The original code did this inside each layer's backward. That makes
the update depend on how a batch is split: under DDP every process normalises
its own local gradient before the all-reduce averages them, gradient
accumulation normalises each micro-batch, and a dynamic AMP loss scale is
removed by the normalisation before the scaler divides by it again.

Here the rescaling is a step of the optimizer instead. It acts on the final
gradient (after DDP's all-reduce, accumulation and AMP unscaling) and before
the optimizer adds weight decay and momentum, exactly once per step:

* :class:`~mmpkkd.engine.AdderOptimWrapper` and
  :class:`~mmpkkd.engine.AmpAdderOptimWrapper`, set by every shipped config,
  call :func:`rescale_adder_grads` in their ``step``;
* a plain PyTorch loop calls it itself, between ``backward()`` and
  ``optimizer.step()``.

Each adder layer registers its weight in a process-wide weak table (see
:func:`tag_adder_weight`; nothing is stored on the tensor, so models still
pickle and deep-copy), so the optimizer's parameters are enough to find the
adder weights and their ``eta``. A process-wide optimizer step pre-hook,
installed once when the first adder layer is built, warns once per layer when
an adder weight reaches ``optimizer.step()`` without having been rescaled; a
second rescaling of the same gradient raises :class:`AdaptiveLRError`.
"""
import math
import warnings
import weakref
from typing import Iterable, Optional, Union

import torch
import torch.nn as nn
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.utils.weak import WeakIdKeyDictionary

#: adder weight -> weak reference to its layer
_LAYERS = WeakIdKeyDictionary()
#: adder weight -> (weak reference to its last rescaled grad, grad version)
_RESCALED = WeakIdKeyDictionary()

_WARNED = weakref.WeakSet()
_STEP_CHECK = None  # handle of the global optimizer step pre-hook


class AdaptiveLRError(RuntimeError):
    """An adder weight gradient was rescaled twice in one step."""


class UnscaledAdderGradWarning(UserWarning):
    """An adder weight reached an optimizer step without the adaptive lr."""


def tag_adder_weight(weight: nn.Parameter, layer: nn.Module) -> None:
    """Mark ``weight`` as the filter of the adder ``layer``.

    The layer must have ``eta`` and ``adaptive_lr`` attributes; they are read
    at every step, so changing them on the layer takes effect at once.
    """
    _LAYERS[weight] = weakref.ref(layer)
    _install_step_check()


def adder_layer_of(param: torch.Tensor) -> Optional[nn.Module]:
    """The adder layer whose adaptive lr applies to ``param``, or None."""
    ref = _LAYERS.get(param)
    layer = ref() if ref is not None else None
    if layer is None or not layer.adaptive_lr or layer.weight is not param:
        return None
    return layer


def _is_rescaled(param: torch.Tensor) -> bool:
    mark = _RESCALED.get(param)
    grad = param.grad
    return (mark is not None and grad is not None and mark[0]() is grad
            and mark[1] == grad._version)


def rescale_adder_grads(
        params: Union[nn.Module, Iterable[torch.Tensor]]) -> int:
    """Apply AdderNet's adaptive learning rate to the adder gradients.

    Call it once per optimizer step, on the final gradients: after
    ``backward()`` (and DDP's all-reduce, the last accumulated micro-batch and
    AMP's ``unscale_``), before ``optimizer.step()``. Each adder weight
    gradient ``g`` of a layer with ``adaptive_lr=True`` becomes
    ``eta * sqrt(numel(g)) * g / ||g||_2``; other parameters are untouched.
    The rescaling is invariant to any positive factor on ``g``, so batch
    splitting and loss scales do not change the update.

    Args:
        params: A model (its parameters are searched) or an iterable of
            parameters, e.g. those of an optimizer's ``param_groups``.

    Returns:
        int: The number of adder gradients rescaled.

    Raises:
        AdaptiveLRError: If a gradient was already rescaled and has not
            changed since (two wrappers, or a second call, in one step).

    Example:
        >>> model = nn.Sequential(Adder2d(3, 8, 3), nn.Flatten(),
        ...                       nn.LazyLinear(10))
        >>> loss = model(torch.randn(4, 3, 8, 8)).square().mean()
        >>> loss.backward()
        >>> rescale_adder_grads(model)  # the (8, 3, 3, 3) filter
        1
        >>> optimizer.step()
    """
    if isinstance(params, nn.Module):
        params = params.parameters()
    count = 0
    for param in params:
        layer = adder_layer_of(param)
        if layer is None or param.grad is None:
            continue
        if _is_rescaled(param):
            raise AdaptiveLRError(
                f'The gradient of {describe(layer)} was rescaled twice in one '
                'optimizer step. Apply the adaptive learning rate once: use '
                'AdderOptimWrapper/AmpAdderOptimWrapper or call '
                'rescale_adder_grads() yourself, not both.')
        grad = param.grad
        target = layer.eta * math.sqrt(grad.numel())
        grad.mul_(target / grad.norm(p=2).clamp(min=1e-12))
        _RESCALED[param] = (weakref.ref(grad), grad._version)
        count += 1
    return count


def describe(layer: nn.Module) -> str:
    """A readable name of an adder layer for messages."""
    return (f'{type(layer).__name__}({layer.extra_repr()}) with weight '
            f'{tuple(layer.weight.shape)}')


def _check_rescaled(optimizer: torch.optim.Optimizer, args, kwargs) -> None:
    """Optimizer step pre-hook: warn about unscaled adder gradients."""
    for group in optimizer.param_groups:
        for param in group['params']:
            layer = adder_layer_of(param)
            if (layer is None or param.grad is None or _is_rescaled(param)
                    or layer in _WARNED):
                continue
            _WARNED.add(layer)
            warnings.warn(
                f'{describe(layer)} reached {type(optimizer).__name__}.step() '
                'without AdderNet\'s adaptive learning rate. Build the '
                "optimizer wrapper with type='AdderOptimWrapper' (or "
                "'AmpAdderOptimWrapper'), or call "
                'mmpkkd.models.rescale_adder_grads(model) between backward() '
                'and step(); set adaptive_lr=False on the layer to train '
                'without it.', UnscaledAdderGradWarning, stacklevel=3)


def _install_step_check() -> None:
    """Install :func:`_check_rescaled` once per process (kept for good)."""
    global _STEP_CHECK
    if _STEP_CHECK is None:
        _STEP_CHECK = register_optimizer_step_pre_hook(_check_rescaled)
