"""Post-training int8 quantisation of the adder layers of a classifier."""
import copy
from typing import Dict, Iterable, Optional, Sequence

import torch
import torch.nn as nn

from .calibration import (DEFAULT_CLIP_LEVELS, adder_layers, choose_clip,
                          collect_stats)
from .int8_adder import Int8Adder2d


def classifier_of(model: nn.Module) -> nn.Module:
    """The network to quantise: a PKKD distiller's student, else ``model``.

    Unwraps DDP-style wrappers (``.module``) too.
    """
    model = getattr(model, 'module', model)
    student = getattr(model, 'student', None)
    return student if isinstance(student, nn.Module) else model


def set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    """``root.<name> = module`` for a dotted module name."""
    parent_name, _, attr = name.rpartition('.')
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, attr, module)


def to_int8_structure(model: nn.Module, layers: Dict[str, Optional[str]]
                      ) -> nn.Module:
    """Swap adders for empty :class:`Int8Adder2d` and their BNs for
    ``nn.Identity``, in place (to load an int8 state dict into).

    Args:
        model: A float model with the architecture the int8 file was made
            from.
        layers: Adder name -> folded BN name (or None).

    Raises:
        KeyError: A layer name is not in ``model``.
    """
    for name, bn_name in layers.items():
        try:
            adder = model.get_submodule(name)
        except AttributeError as err:
            raise KeyError(f'int8 layer {name!r} is not a module of the '
                           f'model ({type(model).__name__}); was the file '
                           'made from another config?') from err
        set_submodule(model, name, Int8Adder2d.like(adder, bn_name))
        if bn_name:
            set_submodule(model, bn_name, nn.Identity())
    return model


@torch.no_grad()
def quantize_int8(model: nn.Module,
                  calib_inputs: Iterable[torch.Tensor],
                  max_samples: int = 64,
                  clip_levels: Sequence[float] = DEFAULT_CLIP_LEVELS,
                  logger=None) -> nn.Module:
    """Int8 inference copy of an adder classifier (post-training).

    Every :class:`~mmpkkd.models.layers.Adder2d` becomes an
    :class:`Int8Adder2d` computing on int8 codes with int32 sums, with the
    BatchNorm after it folded into a per-channel affine of that sum (the BN
    module becomes ``nn.Identity``). Each layer's input and weights share one
    grid, fitted to the layer's calibrated input range after an outlier
    clamp chosen on calibration samples (:func:`choose_clip`); weights
    outside the range are clamped losslessly. Everything else (the CNN stem,
    ReLUs, residual additions, pooling, the classifier) stays float32, and
    the int8 layers take and return float32, so the copy is used exactly
    like the float model. ``model`` is not modified.

    Args:
        model: A float classifier built from our configs (an ANN
            ``ImageClassifier``) or a PKKD distiller (its student is used).
        calib_inputs: Iterable of preprocessed batches ``(N, C, H, W)``.
        max_samples: Images per layer kept to choose the clip.
        clip_levels: Quantile levels tried as clip (1.0 = no clipping).
        logger: Optional object with ``.info`` for one line per layer.

    Returns:
        nn.Module: The quantised classifier, in eval mode, on the CPU.

    Example:
        >>> from mmpkkd.apis import get_model
        >>> net = get_model('configs/ann/ann_resnet20_1xb64-15e_digits.py')
        >>> qnet = quantize_int8(net, [torch.randn(8, 3, 32, 32)])
        >>> qnet(torch.randn(2, 3, 32, 32), mode='tensor').shape
        torch.Size([2, 10])
    """
    if max_samples < 1:
        raise ValueError('quantize_int8: max_samples must be >= 1 (images '
                         f'kept per layer to choose the clip), got '
                         f'{max_samples}')
    if not clip_levels or not all(0 < lv <= 1 for lv in clip_levels):
        raise ValueError('quantize_int8: clip_levels must be quantile levels '
                         f'in (0, 1], got {clip_levels!r}')
    float_model = classifier_of(model)
    qmodel = copy.deepcopy(float_model).cpu().eval()
    stats = collect_stats(qmodel, (x.cpu() for x in calib_inputs),
                          max_samples)
    adders = adder_layers(qmodel)
    for name, st in stats.items():
        adder = adders[name]
        bn = qmodel.get_submodule(st.bn_name) if st.bn_name else None
        lo, hi, errors = choose_clip(adder, bn, st, clip_levels)
        layer = Int8Adder2d.from_float(adder, bn, lo, hi, st.bn_name)
        if logger is not None:
            best = min(errors, key=errors.get)
            logger.info(f'int8 {name}: input range [{st.lo:.4g}, '
                        f'{st.hi:.4g}] -> clip [{lo:.4g}, {hi:.4g}] (level '
                        f'{best}), scale {layer.grid.scale:.4g}, zero point '
                        f'{layer.grid.zero_point}, BN {st.bn_name}')
        st.samples.clear()
        set_submodule(qmodel, name, layer)
        if st.bn_name:
            set_submodule(qmodel, st.bn_name, nn.Identity())
    return qmodel.eval()


def int8_layers(qmodel: nn.Module) -> Dict[str, Optional[str]]:
    """Int8 layer name -> folded BN name, as :func:`to_int8_structure`
    takes it."""
    return {
        name: m.folded_bn
        for name, m in qmodel.named_modules() if isinstance(m, Int8Adder2d)
    }
