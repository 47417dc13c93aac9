"""Saving and loading int8 models (no pickled code).

An int8 file is a ``torch.save``'d dict of plain data only::

    {'format': 'mmpkkd-int8', 'version': 1,
     'model_cfg': {...},          # the float classifier's config (dict)
     'int8_layers': {adder_name: folded_bn_name_or_None, ...},
     'state_dict': {...},         # of the int8 model (int8 weights,
                                  # alpha/beta/scale/zero_point, float rest)
     'meta': {...}}               # free-form: source, accuracies, ...

Loading reads it with the project's weights-only loader
(:func:`mmpkkd.engine.safe_torch_load`), rebuilds the float model from
``model_cfg`` through the registry, swaps in the int8 layers
(:func:`to_int8_structure`) and loads the state dict strictly. Nothing in the
file is executed.
"""
from typing import Any, Dict, Optional, Union

import torch
import torch.nn as nn

from mmpkkd.engine import safe_torch_load
from .quantize import int8_layers, to_int8_structure

FORMAT = 'mmpkkd-int8'
VERSION = 1


def _plain(cfg: Any) -> Any:
    """A config as plain dicts/lists (what the safe loader accepts)."""
    if hasattr(cfg, 'to_dict'):
        cfg = cfg.to_dict()
    if isinstance(cfg, dict):
        return {str(k): _plain(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(_plain(v) for v in cfg)
    if cfg is None or isinstance(cfg, (bool, int, float, str)):
        return cfg
    raise TypeError(f'model_cfg holds a {type(cfg).__name__} ({cfg!r}); an '
                    'int8 file stores plain config values only')


def save_int8(qmodel: nn.Module,
              path: str,
              model_cfg: dict,
              meta: Optional[dict] = None) -> None:
    """Write ``qmodel`` (from :func:`quantize_int8`) to ``path``.

    Args:
        qmodel: The int8 model.
        path: Output file.
        model_cfg: Config of the *float* classifier it was made from (e.g.
            ``cfg.model``, or ``cfg.model.student`` for PKKD), with its
            ``data_preprocessor``, so the file rebuilds on its own.
        meta: Extra plain data to store (accuracies, source checkpoint).
    """
    layers = int8_layers(qmodel)
    if not layers:
        raise ValueError('save_int8: the model has no Int8Adder2d layer; '
                         'quantise it with quantize_int8 first.')
    torch.save(
        {
            'format': FORMAT,
            'version': VERSION,
            'model_cfg': _plain(model_cfg),
            'int8_layers': layers,
            'state_dict': {k: v.cpu()
                           for k, v in qmodel.state_dict().items()},
            'meta': _plain(meta or {}),
        }, path)


def read_int8(path: str) -> Dict[str, Any]:
    """Load and validate an int8 file (dict as described above).

    Raises:
        ValueError: ``path`` is a torch file but not an int8 model.
        CheckpointError: unsafe, corrupt or missing file.
    """
    data = safe_torch_load(path, map_location='cpu')
    check_int8_dict(data, path)
    return data


def check_int8_dict(data: Any, name: str = 'checkpoint') -> None:
    """Raise ValueError unless ``data`` is an int8 file this code reads."""
    if not is_int8_dict(data):
        raise ValueError(f'{name!r} is not an mmpkkd int8 model (no '
                         f"'format': {FORMAT!r}); make one with "
                         'tools/deployment/quantize_int8.py')
    if data.get('version', 0) > VERSION:
        raise ValueError(f'{name!r} is int8 format version '
                         f"{data['version']}; this mmpkkd reads up to "
                         f'{VERSION}. Update mmpkkd.')


def is_int8_dict(data: Any) -> bool:
    """Whether a loaded checkpoint is an int8 model file."""
    return isinstance(data, dict) and data.get('format') == FORMAT


def build_float_model(model_cfg: dict) -> nn.Module:
    """Build a classifier config in the ``mmpkkd`` scope (CPU, eval)."""
    from mmengine.registry import DefaultScope

    from mmpkkd.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpkkd'):
        return MODELS.build(model_cfg).eval()


def load_int8(path: Union[str, Dict[str, Any]],
              model: Optional[nn.Module] = None) -> nn.Module:
    """Rebuild an int8 model saved by :func:`save_int8`.

    Args:
        path: The int8 file, or its already loaded dict.
        model: Optional float model of the same config to convert in place
            (e.g. the one a runner built); by default it is built from the
            file's ``model_cfg``.

    Returns:
        nn.Module: The int8 model in eval mode, usable as
        ``model(x, mode='tensor')``.

    Example:
        >>> qmodel = load_int8('work_dirs/int8/ann_r20_digits_int8.pth')
        >>> qmodel(torch.randn(1, 3, 32, 32), mode='tensor').shape
        torch.Size([1, 10])
    """
    if isinstance(path, dict):
        data = path
        check_int8_dict(data)
    else:
        data = read_int8(path)
    if model is None:
        model = build_float_model(data['model_cfg'])
    to_int8_structure(model, data['int8_layers'])
    model.load_state_dict(data['state_dict'], strict=True)
    return model.eval()
