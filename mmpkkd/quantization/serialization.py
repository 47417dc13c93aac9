"""Saving and loading int8 models: plain data, checked before use.

An int8 file is a ``torch.save``'d dict of plain data only::

    {'format': 'mmpkkd-int8', 'version': 2,
     'model_cfg': {...},          # the float classifier's config (dict)
     'int8_layers': {adder_name: folded_bn_name_or_None, ...},
     'state_dict': {...},         # of the int8 model (int8 weights,
                                  # alpha/beta/scale/zero_point, float rest)
     'meta': {...},               # free-form: source, accuracies, ...
     'sha256': '...'}             # checksum of all of the above

Loading reads it with the project's weights-only loader
(:func:`mmpkkd.engine.safe_torch_load`) and refuses it, before building
anything, unless

* its checksum matches (a flipped bit in a weight is detected);
* every tensor is a plain dense one whose elements are all stored in the
  file (no expanded views that claim huge shapes);
* its ``model_cfg`` names only registered model parts
  (:func:`~mmpkkd.quantization.model_cfg.check_model_cfg`): nothing in the
  file is executed or imported.

The float model is then the caller's -- built from the user's config by
:func:`mmpkkd.apis.get_model`, which compares the file's ``model_cfg``
with that config as data (:func:`check_matches_config`) -- or, without
one, built from the file's checked ``model_cfg`` within a memory budget
proportional to the weights stored
(:class:`~mmpkkd.quantization.budget.AllocationBudget`). The int8 layers
are swapped in (:func:`to_int8_structure`) and the state dict is loaded
strictly.
"""
import hashlib
import json
from typing import Any, Dict, Optional, Union

import torch
import torch.nn as nn

from mmpkkd.engine import safe_torch_load
from .budget import AllocationBudget
from .model_cfg import (Int8FileError, cfg_differences, check_model_cfg,
                        plain)
from .quantize import int8_layers, to_int8_structure

FORMAT = 'mmpkkd-int8'
VERSION = 2
#: Entries covered by the checksum, in this order.
CHECKED_ENTRIES = ('format', 'version', 'model_cfg', 'int8_layers', 'meta')
#: Memory a model built from a file's config may take: this many times
#: the bytes of the weights in the file (float32 weights are 4x their int8
#: codes), plus :data:`BUILD_BUDGET_EXTRA`.
BUILD_BUDGET_FACTOR = 8
BUILD_BUDGET_EXTRA = 64 << 20


def checksum(data: Dict[str, Any]) -> str:
    """SHA-256 of an int8 file's content (entries and tensor bytes).

    Raises:
        Int8FileError: An entry is not plain JSON-like data.
    """
    digest = hashlib.sha256()
    try:
        header = json.dumps([data.get(k) for k in CHECKED_ENTRIES],
                            sort_keys=True)
    except (TypeError, ValueError) as err:
        raise Int8FileError(f'entries are not plain data: {err}') from err
    digest.update(header.encode())
    for key in sorted(data['state_dict']):
        tensor = data['state_dict'][key]
        digest.update(f'|{key}|{tensor.dtype}|{tuple(tensor.shape)}|'.encode())
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_int8(qmodel: nn.Module,
              path: str,
              model_cfg: dict,
              meta: Optional[dict] = None) -> None:
    """Write ``qmodel`` (from :func:`quantize_int8`) to ``path``.

    Args:
        qmodel: The int8 model.
        path: Output file.
        model_cfg: Config of the *float* classifier it was made from, with
            its ``data_preprocessor`` (``mmpkkd.apis.get_model_cfg(cfg,
            student=True)``: the model, or the student of a PKKD config),
            so the file rebuilds on its own. The preprocessor's
            ``batch_augments`` (training only) are not stored.
        meta: Extra plain data to store (accuracies, source checkpoint).
    """
    layers = int8_layers(qmodel)
    if not layers:
        raise ValueError('save_int8: the model has no Int8Adder2d layer; '
                         'quantise it with quantize_int8 first.')
    model_cfg = plain(model_cfg)
    if isinstance(model_cfg.get('data_preprocessor'), dict):
        model_cfg['data_preprocessor'].pop('batch_augments', None)
    data = {
        'format': FORMAT,
        'version': VERSION,
        'model_cfg': model_cfg,
        'int8_layers': layers,
        'state_dict': {k: v.detach().cpu().contiguous()
                       for k, v in qmodel.state_dict().items()},
        'meta': plain(meta or {}),
    }
    check_model_cfg(data['model_cfg'], 'save_int8')
    data['sha256'] = checksum(data)
    torch.save(data, path)


def read_int8(path: str) -> Dict[str, Any]:
    """Load and validate an int8 file (dict as described above).

    Raises:
        Int8FileError: ``path`` is a torch file but not an int8 model, or
            one that fails a check (see the module docstring).
        CheckpointError: unsafe, corrupt or missing file.
    """
    data = safe_torch_load(path, map_location='cpu')
    check_int8_dict(data, path)
    return data


def _check_tensors(state: Any, name: str) -> None:
    """Plain dense tensors whose elements are all stored in the file."""
    if not isinstance(state, dict):
        raise Int8FileError(f'{name}: state_dict is not a dict')
    for key, tensor in state.items():
        if not isinstance(key, str) or not isinstance(tensor, torch.Tensor):
            raise Int8FileError(f'{name}: state_dict entry {key!r} is not a '
                                'named tensor')
        if tensor.layout != torch.strided or tensor.is_quantized:
            raise Int8FileError(f'{name}: state_dict[{key!r}] is not a '
                                'dense tensor')
        stored = tensor.untyped_storage().nbytes()
        needed = (tensor.storage_offset() + tensor.numel()) * \
            tensor.element_size()
        if not tensor.is_contiguous() or needed > stored:
            raise Int8FileError(
                f'{name}: state_dict[{key!r}] claims shape '
                f'{tuple(tensor.shape)} but the file stores '
                f'{stored} bytes for it (an expanded or oversized tensor); '
                'refused.')


def check_int8_dict(data: Any, name: str = 'checkpoint') -> None:
    """Raise :class:`Int8FileError` unless ``data`` is an intact int8 file
    this code reads (see the module docstring)."""
    if not is_int8_dict(data):
        raise Int8FileError(f'{name!r} is not an mmpkkd int8 model (no '
                            f"'format': {FORMAT!r}); make one with "
                            'tools/deployment/quantize_int8.py')
    version = data.get('version')
    if not isinstance(version, int) or version > VERSION:
        raise Int8FileError(f'{name!r} is int8 format version {version!r}; '
                            f'this mmpkkd reads up to {VERSION}. Update '
                            'mmpkkd.')
    if version < VERSION:
        raise Int8FileError(
            f'{name!r} is int8 format version {version}, written without a '
            'checksum, so its weights cannot be verified. Make it again '
            'with tools/deployment/quantize_int8.py.')
    _check_tensors(data.get('state_dict'), name)
    layers = data.get('int8_layers')
    if not isinstance(layers, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str))
            for k, v in layers.items()):
        raise Int8FileError(f'{name}: int8_layers is not a dict of layer '
                            'names')
    if data.get('sha256') != checksum(data):
        raise Int8FileError(
            f'{name}: checksum mismatch: the file is corrupt or was '
            'modified after it was written (sha256 does not match its '
            'content). Copy it again or make it again with '
            'tools/deployment/quantize_int8.py.')
    check_model_cfg(data['model_cfg'], name)


def is_int8_dict(data: Any) -> bool:
    """Whether a loaded checkpoint is an int8 model file."""
    return isinstance(data, dict) and data.get('format') == FORMAT


def build_budget(data: Dict[str, Any]) -> int:
    """The memory a model built from an int8 file's config may take."""
    stored = sum(t.numel() * t.element_size()
                 for t in data['state_dict'].values())
    return BUILD_BUDGET_FACTOR * stored + BUILD_BUDGET_EXTRA


def check_matches_config(data: Dict[str, Any], model_cfg: dict,
                         name: str = 'int8 file') -> dict:
    """Check that an int8 file holds the model of the user's config.

    The file's ``model_cfg`` is compared with ``model_cfg`` as data
    (training-only keys ignored); nothing of the file is built.

    Args:
        data: A checked int8 file.
        model_cfg: The classifier config of the user's config
            (:func:`mmpkkd.apis.get_model_cfg` with ``student=True``).
        name: The file, for messages.

    Returns:
        dict: ``model_cfg``, to build the model from.

    Raises:
        Int8FileError: The file's model differs from the config's; the
            message lists the differences and the config the file was made
            with (if recorded).
    """
    differences = cfg_differences(data['model_cfg'], model_cfg)
    if differences:
        shown = '; '.join(differences[:5])
        more = f' (and {len(differences) - 5} more)' if len(
            differences) > 5 else ''
        source = data.get('meta', {}).get('config')
        hint = (f' It was made from {source}.'
                if isinstance(source, str) else '')
        raise Int8FileError(
            f'{name} holds another model than the config: {shown}{more} '
            f'(file vs config).{hint} Pass the config the file was '
            'quantised from.')
    return model_cfg


def load_int8(path: Union[str, Dict[str, Any]],
              model: Optional[nn.Module] = None) -> nn.Module:
    """Rebuild an int8 model saved by :func:`save_int8`.

    To build it from your own config instead (the file's model compared
    with it as data), use ``mmpkkd.apis.get_model(config, path)``.

    Args:
        path: The int8 file, or its already loaded dict.
        model: Optional float model to convert in place (e.g. the one a
            runner built from the user's config, already compared with the
            file by :func:`check_matches_config`). Without it, the model is
            built from the file's checked ``model_cfg`` within a memory
            budget.

    Returns:
        nn.Module: The int8 model in eval mode, usable as
        ``model(x, mode='tensor')``.

    Raises:
        Int8FileError: The file is refused (see the module docstring), or
            its weights do not fit the model.
        CheckpointError: unsafe, corrupt or missing file.

    Example:
        >>> qmodel = load_int8('work_dirs/int8/ann_r20_digits_int8.pth')
        >>> qmodel(torch.randn(1, 3, 32, 32), mode='tensor').shape
        torch.Size([1, 10])
    """
    name = path if isinstance(path, str) else 'int8 model'
    if isinstance(path, dict):
        data = path
        check_int8_dict(data)
    else:
        data = read_int8(path)
    if model is None:
        model = _build_from_file(data)
    to_int8_structure(model, data['int8_layers'])
    own = model.state_dict()
    state = data['state_dict']
    wrong = sorted(set(own) ^ set(state)) + [
        f'{k} {tuple(state[k].shape)} vs {tuple(v.shape)}'
        for k, v in own.items() if k in state and state[k].shape != v.shape
    ]
    if wrong:
        raise Int8FileError(
            f'{name}: its weights do not fit its model: '
            f'{", ".join(wrong[:5])}' + (' ...' if len(wrong) > 5 else ''))
    model.load_state_dict(state, strict=True)
    return model.eval()


def _build_from_file(data: Dict[str, Any]) -> nn.Module:
    """The float model of a checked file's ``model_cfg``, built by
    :func:`mmpkkd.apis.get_model` within :func:`build_budget`."""
    from mmengine.config import Config

    from mmpkkd.apis import get_model  # (the API builds on this package)
    with AllocationBudget(build_budget(data), 'the model of an int8 file'):
        return get_model(Config(dict(model=data['model_cfg'])))
