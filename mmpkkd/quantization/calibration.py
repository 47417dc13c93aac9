"""Calibration of the int8 adder layers: what feeds them, what they feed.

One pass of the float model over the calibration batches records, with
forward hooks,

* for every adder layer, the BatchNorm that reads its output (if any): the
  BN whose input *is* the layer's output tensor. This pairs conv/norm the
  way mmpretrain's blocks and mmcv's ``ConvModule`` call them, without
  knowing their code;
* the range of every adder layer's input, and a sample of inputs for the
  clip search of :func:`choose_clip`.
"""
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from mmpkkd.models.layers import Adder2d
from .int8_adder import Int8Adder2d

#: Quantile levels tried as the upper clip of an input (1.0 = the maximum);
#: the lower clip uses ``1 - level``.
DEFAULT_CLIP_LEVELS = (1.0, 0.99999, 0.9999, 0.999, 0.995, 0.99)
_QUANTILE_MAX_ELEMS = 1 << 22


@dataclass
class LayerStats:
    """What calibration saw of one adder layer."""
    bn_name: Optional[str] = None
    lo: float = float('inf')
    hi: float = float('-inf')
    samples: List[torch.Tensor] = field(default_factory=list)
    num_samples: int = 0


def run_model(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """``model(inputs, mode='tensor')`` for MMEngine models, else
    ``model(inputs)``."""
    from mmengine.model import BaseModel
    if isinstance(model, BaseModel):
        return model(inputs, mode='tensor')
    return model(inputs)


def adder_layers(model: nn.Module) -> Dict[str, nn.Conv2d]:
    """Every :class:`~mmpkkd.models.layers.Adder2d` of ``model`` by name."""
    return OrderedDict((name, m) for name, m in model.named_modules()
                       if isinstance(m, Adder2d))


@torch.no_grad()
def collect_stats(model: nn.Module,
                  calib_inputs: Iterable[torch.Tensor],
                  max_samples: int = 64) -> Dict[str, LayerStats]:
    """Pair adders with BNs and record their input ranges and samples.

    Args:
        model: The float classifier, in eval mode.
        calib_inputs: Batches ``(N, C, H, W)`` as the model takes them
            (after the data preprocessor).
        max_samples: Images per layer kept for the clip search.

    Returns:
        dict: ``LayerStats`` per adder layer name, in module order.

    Raises:
        ValueError: The model has no adder layer, or no calibration batch
            was given.
    """
    adders = adder_layers(model)
    if not adders:
        raise ValueError('quantize_int8: the model has no Adder2d layer to '
                         'quantise (is it a CNN config?).')
    stats = OrderedDict((name, LayerStats()) for name in adders)
    outputs: Dict[int, str] = {}  # id(output tensor) -> adder name
    live: List[torch.Tensor] = []  # keeps those ids valid during a batch
    handles = []

    def adder_pre(name):
        def hook(module, args):
            x = args[0].detach()
            st = stats[name]
            st.lo = min(st.lo, float(x.min()))
            st.hi = max(st.hi, float(x.max()))
            if st.num_samples < max_samples:
                take = x[:max_samples - st.num_samples].float().clone()
                st.samples.append(take)
                st.num_samples += take.shape[0]
        return hook

    def adder_post(name):
        def hook(module, args, output):
            outputs[id(output)] = name
            live.append(output)
        return hook

    def bn_pre(bn_name):
        def hook(module, args):
            name = outputs.get(id(args[0]))
            if name is not None and stats[name].bn_name is None:
                stats[name].bn_name = bn_name
        return hook

    for name, m in adders.items():
        handles.append(m.register_forward_pre_hook(adder_pre(name)))
        handles.append(m.register_forward_hook(adder_post(name)))
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            handles.append(m.register_forward_pre_hook(bn_pre(name)))
    batches = 0
    try:
        for x in calib_inputs:
            run_model(model, x)
            outputs.clear()
            live.clear()
            batches += 1
    finally:
        for h in handles:
            h.remove()
    if batches == 0:
        raise ValueError('quantize_int8: calib_inputs gave no batch; pass at '
                         'least one (N, C, H, W) tensor.')
    return stats


def _quantiles(x: torch.Tensor, levels: Sequence[float]) -> torch.Tensor:
    flat = x.flatten()
    if flat.numel() > _QUANTILE_MAX_ELEMS:  # torch.quantile's size limit
        gen = torch.Generator().manual_seed(0)
        idx = torch.randint(flat.numel(), (_QUANTILE_MAX_ELEMS, ),
                            generator=gen)
        flat = flat[idx]
    return torch.quantile(flat.double(),
                          torch.tensor(list(levels), dtype=torch.float64))


@torch.no_grad()
def choose_clip(adder: nn.Conv2d,
                bn: Optional[nn.Module],
                stats: LayerStats,
                levels: Sequence[float] = DEFAULT_CLIP_LEVELS,
                reference: Optional[Callable] = None
                ) -> Tuple[float, float, Dict[float, float]]:
    """Pick the input clip ``[lo, hi]`` whose int8 layer is closest to float.

    Outlier clamp for activations: each candidate clips the input at the
    ``level`` quantile (upper) and ``1 - level`` quantile (lower, when the
    input goes below 0) of the calibration samples; the level whose int8
    layer output (BN folded) has the smallest mean squared error against
    the float layer + BN on those samples wins. Level 1.0 is the plain
    min/max range.

    Args:
        adder, bn: The float layer and the BN after it (or None).
        stats: Its calibration record (needs samples).
        levels: Quantile levels to try.
        reference: ``f(x) -> float output`` of the layer + BN (default:
            ``bn(adder(x))``).

    Returns:
        tuple: ``(lo, hi, {level: mse})``.
    """
    x = torch.cat(stats.samples)
    ref_fn = reference or (lambda t: bn(adder(t)) if bn is not None else
                           adder(t))
    ref = ref_fn(x).float()
    qs = _quantiles(x, list(levels) + [1.0 - lv for lv in levels])
    n = len(levels)
    errors, best = {}, None
    for i, level in enumerate(levels):
        hi = stats.hi if level >= 1.0 else float(qs[i])
        lo = stats.lo if level >= 1.0 else float(qs[n + i])
        lo = min(lo, 0.0) if stats.lo < 0 else 0.0
        layer = Int8Adder2d.from_float(adder, bn, lo, max(hi, 0.0))
        err = float(((layer(x) - ref)**2).mean())
        errors[level] = err
        if best is None or err < best[0]:
            best = (err, lo, max(hi, 0.0))
    return best[1], best[2], errors
