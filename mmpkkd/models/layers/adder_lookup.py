"""Find the adder layers behind an optimizer's parameters, at every step.

The adaptive learning rate needs, for each gradient an optimizer is about
to apply, the adder layer it belongs to (for ``eta`` and the filter size).
It is found from the *layer*: every adder layer is tracked from its
construction (or unpickling, or deep copy), and its ``weight`` is read at
the moment of the lookup. Code that replaces the Parameter object of a
layer therefore cannot hide it: meta-device initialisation followed by
``to_empty``, ``.to()`` under
``torch.__future__.set_overwrite_module_params_on_conversion(True)``,
``load_state_dict(assign=True)``, and FSDP with ``use_orig_params=True``.

FSDP shards a weight over the ranks of a process group. Its gradient norm
is then a sum over the ranks, so the group must be known: it is read from
the FSDP units of the model, when the model is given.
"""
import math
import weakref
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

import torch
import torch.nn as nn

#: every adder layer alive in this process
_LIVE = weakref.WeakSet()


def track_adder_layer(layer: nn.Module) -> None:
    """Make ``layer`` findable by :func:`find_adder_weights`.

    Adder layers call it when they are built and when they are unpickled or
    deep-copied. The layer must have a 4-d conv ``weight`` and ``eta`` and
    ``adaptive_lr`` attributes; these are read at every lookup, so changing
    them on the layer takes effect at once.
    """
    _LIVE.add(layer)


def is_adder_layer(module: nn.Module) -> bool:
    """Whether ``module`` is a tracked adder layer."""
    return module in _LIVE


def describe(layer: nn.Module) -> str:
    """A readable name of an adder layer for messages."""
    return (f'{type(layer).__name__}({layer.extra_repr()}) with weight '
            f'{filter_shape(layer)}')


def filter_shape(layer: nn.Module) -> Tuple[int, ...]:
    """The full filter shape ``(C_out, C_in / groups, kH, kW)`` of an adder
    layer, also while FSDP holds only a flat shard of it."""
    return (layer.out_channels, layer.in_channels // layer.groups,
            *layer.kernel_size)


@dataclass
class AdderWeight:
    """An adder layer's weight as an optimizer holds it.

    Attributes:
        param (torch.Tensor): The optimizer's parameter, ``layer.weight``
            (a flat shard of it under FSDP).
        layer (nn.Module): The adder layer.
        name (str): The layer for messages: its module path and
            :func:`describe`.
        group: The process group over which FSDP shards the weight, or None
            when this rank holds the whole weight.
    """

    param: torch.Tensor
    layer: nn.Module
    name: str
    group: Optional[object] = None

    @property
    def numel(self) -> int:
        """Elements of the whole filter (not of this rank's shard)."""
        return math.prod(filter_shape(self.layer))


@dataclass
class AdderLookup:
    """What :func:`find_adder_weights` found among some parameters.

    Attributes:
        weights (list[AdderWeight]): Adder weights, in parameter order.
        flattened (list[tuple[str, nn.Module]]): Adder layers with
            ``adaptive_lr=True`` whose weight is hidden in an FSDP
            ``FlatParameter`` (``use_orig_params=False``): (name, layer).
        unknown_shards (list[str]): Adder layers whose weight FSDP shards
            over a process group that is not known (no model given).
    """

    weights: List[AdderWeight]
    flattened: List[Tuple[str, nn.Module]]
    unknown_shards: List[str]


def find_adder_weights(params: Iterable[torch.Tensor],
                       model: Optional[nn.Module] = None) -> AdderLookup:
    """The adder layer of each parameter in ``params`` that has one.

    Args:
        params: Parameters, e.g. those of an optimizer's ``param_groups``.
        model: The model they belong to, if known: its module paths name
            the layers in messages, and its FSDP units give the process
            groups of sharded weights. Without it, every adder layer alive
            in the process is searched.

    Returns:
        AdderLookup: The adder weights, and the layers the adaptive lr
        cannot reach.

    Example:
        >>> model = nn.Sequential(Adder2d(3, 8, 3), nn.Conv2d(8, 8, 1))
        >>> found = find_adder_weights(model.parameters(), model)
        >>> [(w.name.split(' ')[0], tuple(w.param.shape))
        ...  for w in found.weights]
        [("'0'", (8, 3, 3, 3))]
    """
    if model is not None:
        layers = [(name, m) for name, m in model.named_modules()
                  if is_adder_layer(m)]
        groups = _fsdp_shard_groups(model)
    else:
        layers = [(None, m) for m in list(_LIVE)]
        groups = {}
    by_weight: Dict[int, Tuple[Optional[str], nn.Module]] = {}
    for name, layer in layers:
        weight = getattr(layer, 'weight', None)
        if isinstance(weight, torch.Tensor):
            by_weight[id(weight)] = (name, layer)

    found = AdderLookup([], [], [])
    for param in params:
        hit = by_weight.get(id(param))
        if hit is None:
            found.flattened += _flattened_adder_layers(param)
            continue
        name, layer = hit
        label = f'{name!r} ({describe(layer)})' if name else describe(layer)
        weight = AdderWeight(param, layer, label, groups.get(id(param)))
        if weight.group is None and _fsdp_sharded(param, layer):
            found.unknown_shards.append(label)
        found.weights.append(weight)
    return found


def _fsdp_sharded(param: torch.Tensor, layer: nn.Module) -> bool:
    """Whether FSDP may shard ``param`` over ranks (an original parameter
    that FSDP flattened), or ``param`` is not the whole filter. The first
    test gives the same answer on every rank, also where one rank holds
    the whole filter and another none of it."""
    return (getattr(param, '_fsdp_flattened', False)
            or param.numel() != math.prod(filter_shape(layer)))


def _fsdp_shard_groups(model: nn.Module) -> Dict[int, object]:
    """id(original parameter) -> process group, for the parameters of the
    FSDP units (``use_orig_params=True``) of ``model`` that shard them."""
    try:
        from torch.distributed.fsdp import FullyShardedDataParallel
    except ImportError:  # torch without distributed support
        return {}
    groups = {}
    for module in model.modules():
        if not isinstance(module, FullyShardedDataParallel):
            continue
        handle = getattr(module, '_handle', None)
        if handle is None or not handle.uses_sharded_strategy:
            continue  # no parameters, or NO_SHARD: every rank holds all
        for param in handle.flat_param._params or ():
            groups[id(param)] = handle.process_group
    return groups


def _flattened_adder_layers(
        param: torch.Tensor) -> List[Tuple[str, nn.Module]]:
    """Adder layers with the adaptive lr flattened into ``param``, if it is
    an FSDP ``FlatParameter`` (``use_orig_params=False``)."""
    names = []
    for info in getattr(param, '_param_infos', None) or ():
        module = getattr(info, 'module', None)
        if (getattr(info, 'param_name', None) == 'weight'
                and module is not None and is_adder_layer(module)
                and module.adaptive_lr):
            names.append(
                (f'{info.module_name!r} ({describe(module)})', module))
    return names
