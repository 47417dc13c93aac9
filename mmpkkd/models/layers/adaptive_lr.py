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

The adder weights are found from the layers at every step (see
:mod:`~mmpkkd.models.layers.adder_lookup`), so replacing a layer's weight
Parameter (meta-device init and ``to_empty``, ``.to()`` with parameter
overwrite, ``load_state_dict(assign=True)``, FSDP with
``use_orig_params=True``) does not lose it; where the rescaling cannot
apply (FSDP with ``use_orig_params=False``), it raises
:class:`AdaptiveLRError` naming the layer. A process-wide optimizer step
pre-hook, installed once when the first adder layer is built, warns once per
layer when an adder gradient reaches ``optimizer.step()`` without having
been rescaled since the previous step (clipping or other in-place changes
after the rescaling are fine); a second rescaling of the same, unchanged
gradient raises :class:`AdaptiveLRError`.
"""
import math
import warnings
import weakref
from typing import Iterable, List, Optional, Union

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from .adder_lookup import (AdderWeight, find_adder_weights,
                           track_adder_layer)

#: adder layer -> (weak reference to its last rescaled grad, grad version),
#: for the error on a second rescaling of an unchanged gradient
_RESCALED = weakref.WeakKeyDictionary()
#: adder layer -> weak reference to the grad rescaled since the layer's last
#: optimizer step, for the warning (consumed by the step)
_PENDING = weakref.WeakKeyDictionary()

_WARNED = weakref.WeakSet()
_STEP_CHECK = None  # handle of the global optimizer step pre-hook


class AdaptiveLRError(RuntimeError):
    """The adaptive lr cannot be applied as asked: a gradient rescaled twice
    in one step, or an adder weight the rescaling cannot reach."""


class UnscaledAdderGradWarning(UserWarning):
    """An adder weight reached an optimizer step without the adaptive lr."""


def register_adder_layer(layer: nn.Module) -> None:
    """Let the adaptive learning rate find ``layer``'s weight at every step.

    The layer must have a conv ``weight`` and ``eta`` and ``adaptive_lr``
    attributes; they are read at every step, so changing them on the layer
    takes effect at once. Adder layers call it when built and when unpickled
    or deep-copied.
    """
    track_adder_layer(layer)
    _install_step_check()


def rescale_adder_grads(params: Union[nn.Module, Iterable[torch.Tensor]],
                        model: Optional[nn.Module] = None) -> int:
    """Apply AdderNet's adaptive learning rate to the adder gradients.

    Call it once per optimizer step, on the final gradients: after
    ``backward()`` (and DDP's all-reduce, the last accumulated micro-batch and
    AMP's ``unscale_``), before ``optimizer.step()``. Each adder weight
    gradient ``g`` of a layer with ``adaptive_lr=True`` becomes
    ``eta * sqrt(numel(W)) * g / ||g||_2``; other parameters are untouched.
    The rescaling is invariant to any positive factor on ``g``, so batch
    splitting and loss scales do not change the update. Under FSDP
    (``use_orig_params=True``) a sharded filter's norm is summed over its
    shards; every rank must then call this function.

    Args:
        params: A model (its parameters are searched) or an iterable of
            parameters, e.g. those of an optimizer's ``param_groups``.
        model: The model the parameters belong to. Needed only under FSDP
            with sharded weights (it gives the process groups); it also
            names the layers in messages by their module path. Defaults to
            ``params`` when that is a model.

    Returns:
        int: The number of adder gradients rescaled on this rank.

    Raises:
        AdaptiveLRError: If a gradient was already rescaled and has not
            changed since (two wrappers, or a second call, in one step); if
            FSDP flattens an adder weight (``use_orig_params=False``); if
            FSDP shards one and ``model`` is not given.

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
        model = params if model is None else model
        params = params.parameters()
    found = find_adder_weights(params, model)
    if found.flattened:
        raise AdaptiveLRError(
            'AdderNet\'s adaptive learning rate cannot reach the weight of '
            f'{found.flattened[0][0]}: FSDP flattened it into a '
            'FlatParameter. '
            'Wrap the model with use_orig_params=True (in MMEngine: '
            "model_wrapper_cfg=dict(type='MMFullyShardedDataParallel', "
            'use_orig_params=True)), or set adaptive_lr=False on the adder '
            'layers.')
    if found.unknown_shards:
        raise AdaptiveLRError(
            f'FSDP shards the weight of {found.unknown_shards[0]} over '
            'several ranks, and its gradient norm needs the process group: '
            'call rescale_adder_grads(model) with the FSDP-wrapped model '
            '(AdderOptimWrapper learns the model from optim_context(), as '
            'the MMEngine runner calls it).')
    weights = [w for w in found.weights if w.layer.adaptive_lr]
    for w in weights:
        if _is_unchanged_since_rescaled(w):
            raise AdaptiveLRError(
                f'The gradient of {w.name} was rescaled twice in one '
                'optimizer step. Apply the adaptive learning rate once: use '
                'AdderOptimWrapper/AmpAdderOptimWrapper or call '
                'rescale_adder_grads() yourself, not both.')
    # one multi-tensor pass over all adder gradients: their norms
    # (torch._foreach_norm), the scales eta * sqrt(numel) / norm, the product
    rescaled = [(w, norm) for w, norm in zip(weights, _grad_norms(weights))
                if w.param.grad is not None]
    if rescaled:
        scales = [norm for _, norm in rescaled]  # fresh tensors, ours
        torch._foreach_clamp_min_(scales, 1e-12)
        torch._foreach_reciprocal_(scales)
        torch._foreach_mul_(scales, [w.layer.eta * math.sqrt(w.numel)
                                     for w, _ in rescaled])
        torch._foreach_mul_([w.param.grad for w, _ in rescaled], scales)
    for w, _ in rescaled:
        grad = w.param.grad
        _RESCALED[w.layer] = (weakref.ref(grad), grad._version)
        _PENDING[w.layer] = weakref.ref(grad)
    return len(rescaled)


def _is_unchanged_since_rescaled(w: AdderWeight) -> bool:
    mark, grad = _RESCALED.get(w.layer), w.param.grad
    return (mark is not None and grad is not None and mark[0]() is grad
            and mark[1] == grad._version)


def _grad_norms(weights: List[AdderWeight]) -> List[torch.Tensor]:
    """The L2 norm of each whole filter gradient (0 where None).

    Unsharded gradients get theirs from ``torch._foreach_norm``, one
    multi-tensor call per (device, dtype). A gradient FSDP shards over a
    process group has its squared norm summed over the group, in one
    all-reduce per group, on every rank alike (also where this rank's shard
    is empty or its grad None)."""
    norms: List[Optional[torch.Tensor]] = [None] * len(weights)
    local = {}  # (device, dtype) -> [(index, grad)]
    sharded = {}  # group -> [(index, squared local norm)]
    for i, w in enumerate(weights):
        grad = w.param.grad
        if w.group is None:
            if grad is not None:
                local.setdefault((grad.device, grad.dtype), []).append(
                    (i, grad))
            continue
        sq = (grad.detach().float().square().sum() if grad is not None
              and grad.numel() else torch.zeros((), device=w.param.device))
        sharded.setdefault(w.group, []).append((i, sq))
    for items in local.values():
        found = torch._foreach_norm([grad.detach() for _, grad in items], 2)
        for (i, _), norm in zip(items, found):
            norms[i] = norm
    for group, items in sharded.items():
        total = torch.stack([sq for _, sq in items])
        dist.all_reduce(total, group=group)
        for (i, _), sq in zip(items, total):
            grad = weights[i].param.grad
            norms[i] = sq.sqrt().to(grad.dtype) if grad is not None else sq
    return [n if n is not None else torch.zeros(()) for n in norms]


def _check_rescaled(optimizer: torch.optim.Optimizer, args, kwargs) -> None:
    """Optimizer step pre-hook: warn about unscaled adder gradients."""
    params = [p for group in optimizer.param_groups for p in group['params']]
    found = find_adder_weights(params)
    unscaled = []
    for w in found.weights:
        pending = _PENDING.pop(w.layer, None)
        grad = w.param.grad
        if (not w.layer.adaptive_lr or grad is None
                or (pending is not None and pending() is grad)):
            continue
        if w.layer not in _WARNED:
            _WARNED.add(w.layer)
            unscaled.append(w.name)
    for name in unscaled:
        warnings.warn(
            f'{name} reached {type(optimizer).__name__}.step() '
            'without AdderNet\'s adaptive learning rate. Build the '
            "optimizer wrapper with type='AdderOptimWrapper' (or "
            "'AmpAdderOptimWrapper'), or call "
            'mmpkkd.models.rescale_adder_grads(model) between backward() '
            'and step(); set adaptive_lr=False on the layer to train '
            'without it.', UnscaledAdderGradWarning, stacklevel=3)
    for name, layer in found.flattened:
        if layer in _WARNED:
            continue
        _WARNED.add(layer)
        warnings.warn(
            f'{name} reached {type(optimizer).__name__}.step() without '
            'AdderNet\'s adaptive learning rate: FSDP flattened its weight '
            '(use_orig_params=False). Wrap the model with '
            'use_orig_params=True and use AdderOptimWrapper.',
            UnscaledAdderGradWarning, stacklevel=3)


def _install_step_check() -> None:
    """Install :func:`_check_rescaled` once per process (kept for good)."""
    global _STEP_CHECK
    if _STEP_CHECK is None:
        _STEP_CHECK = register_optimizer_step_pre_hook(_check_rescaled)
