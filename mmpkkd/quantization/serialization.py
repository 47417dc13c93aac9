"""Saving and loading int8 models: plain data, checked before use.

An int8 file (format version 3) is a `safetensors
<https://huggingface.co/docs/safetensors>`_ file: the int8 model's
``state_dict`` (int8 weights, ``alpha``/``beta``/``scale``/``zero_point``,
the float rest) as its tensors, and everything else as JSON strings in its
string metadata::

    {'format': 'mmpkkd-int8', 'version': '3',
     'model_cfg': '{...}',        # the float classifier's config
     'int8_layers': '{...}',      # adder name -> folded BN name or null
     'meta': '{...}',             # free-form: source, accuracies, ...
     'sha256': '...'}             # checksum of all of the above + tensors

Nothing in it is a pickle: reading it parses a JSON header and copies
tensor bytes, and runs no code of the file. In memory, and to the
functions below, a file is the dict ``{'format', 'version', 'model_cfg',
'int8_layers', 'state_dict', 'meta', 'sha256'}``.

Loading refuses a file, before building anything, unless

* its checksum matches (a flipped bit in a weight is detected);
* every tensor is a plain dense one whose elements are all stored in the
  file (no views that claim huge shapes);
* its ``model_cfg`` names only registered model parts
  (:func:`~mmpkkd.quantization.model_cfg.check_model_cfg`): nothing in the
  file is executed or imported.

The float model is then the caller's -- built from the user's config by
:func:`mmpkkd.apis.get_model`, which compares the file's ``model_cfg``
with that config as data (:func:`check_matches_config`) -- or, without
one, built from the file's checked ``model_cfg``
(:func:`mmpkkd.models.build_model`) within a memory budget proportional to
the weights stored (:class:`~mmpkkd.quantization.budget.AllocationBudget`).
The int8 layers are swapped in (:func:`to_int8_structure`) and the state
dict is loaded strictly.

Version 2 files (a ``torch.save``'d dict of the same entries) still load,
read with the weights-only loader (:func:`mmpkkd.engine.safe_torch_load`)
and checked as above, with an :class:`Int8FormatWarning` to re-save them
(:func:`resave_int8`). Version 1 files, which had no checksum, are
refused.
"""
import hashlib
import json
import os.path as osp
import warnings
from typing import Any, Dict, Optional, Union

import torch
import torch.nn as nn

from mmpkkd.engine import safe_torch_load
from mmpkkd.models import build_model
from .budget import AllocationBudget
from .model_cfg import (Int8FileError, cfg_differences, check_model_cfg,
                        plain)
from .quantize import int8_layers, to_int8_structure

FORMAT = 'mmpkkd-int8'
#: The version :func:`save_int8` writes (safetensors).
VERSION = 3
#: The last version written by ``torch.save``; read with a warning.
TORCH_VERSION = 2
#: Entries covered by the checksum, in this order.
CHECKED_ENTRIES = ('format', 'version', 'model_cfg', 'int8_layers', 'meta')
#: Entries of a file besides its tensors (the safetensors metadata keys).
METADATA_ENTRIES = CHECKED_ENTRIES + ('sha256', )
#: Memory a model built from a file's config may take: this many times
#: the bytes of the weights in the file (float32 weights are 4x their int8
#: codes), plus :data:`BUILD_BUDGET_EXTRA`.
BUILD_BUDGET_FACTOR = 8
BUILD_BUDGET_EXTRA = 64 << 20


class Int8FormatWarning(UserWarning):
    """An int8 file in an older format that still loads: re-save it."""


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
    """Write ``qmodel`` (from :func:`quantize_int8`) to ``path``
    (format version 3, safetensors).

    Args:
        qmodel: The int8 model.
        path: Output file (by convention ``*.safetensors``).
        model_cfg: Config of the *float* classifier it was made from, with
            its ``data_preprocessor`` (``mmpkkd.apis.get_model_cfg(cfg,
            student=True)``: the model, or the student of a PKKD config),
            so the file rebuilds on its own. The preprocessor's
            ``batch_augments`` (training only) are not stored.
        meta: Extra plain data to store (accuracies, source checkpoint).

    Example:
        >>> qmodel = quantize_int8(model, calib_batches)
        >>> save_int8(qmodel, 'r20_int8.safetensors',
        ...           get_model_cfg(config, student=True),
        ...           meta={'config': config})
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
        'state_dict': {k: v.detach().cpu().contiguous().clone()
                       for k, v in qmodel.state_dict().items()},
        'meta': plain(meta or {}),
    }
    check_model_cfg(data['model_cfg'], 'save_int8')
    data['sha256'] = checksum(data)
    write_int8_dict(data, path)


def write_int8_dict(data: Dict[str, Any], path: str) -> None:
    """Write an int8 file's dict to ``path`` as safetensors, as it is: its
    ``state_dict`` as the tensors, the other entries as metadata (JSON).

    :func:`save_int8` is the way to write a model; this writes whatever
    ``data`` holds (no checks, no new checksum).
    """
    from safetensors.torch import save_file
    metadata = {
        'format': str(data['format']),
        'version': str(data['version']),
        'sha256': str(data.get('sha256')),
    }
    for key in ('model_cfg', 'int8_layers', 'meta'):
        metadata[key] = json.dumps(data[key], sort_keys=True)
    save_file(dict(data['state_dict']), path, metadata=metadata)


def is_safetensors_file(path: str) -> bool:
    """Whether ``path`` starts like a safetensors file (an 8-byte header
    length that fits the file, then ``{``); False for a missing file."""
    try:
        with open(path, 'rb') as f:
            head = f.read(9)
            size = osp.getsize(path)
    except OSError:
        return False
    if len(head) < 9:
        return False
    length = int.from_bytes(head[:8], 'little')
    return head[8:9] == b'{' and 0 < length <= size - 8


def read_int8_dict(path: str) -> Dict[str, Any]:
    """An int8 file's dict, read but not yet checked (see
    :func:`read_int8`). A safetensors file is read without any pickle; an
    older ``torch.save``'d file with the weights-only loader.

    Raises:
        Int8FileError: A safetensors file that is corrupt or has no mmpkkd
            int8 metadata.
        CheckpointError: An unsafe, corrupt or missing torch file.
    """
    if not is_safetensors_file(path):
        data = safe_torch_load(path, map_location='cpu')
        if is_int8_dict(data) and data.get('version') == VERSION:
            raise Int8FileError(
                f'{path!r} is a torch file that claims int8 format version '
                f'{VERSION}, which is written as safetensors only; refused. '
                'Make it again with tools/deployment/quantize_int8.py.')
        return data
    from safetensors import SafetensorError, safe_open
    try:
        with safe_open(path, framework='pt', device='cpu') as f:
            metadata = f.metadata() or {}
            if metadata.get('format') != FORMAT:
                raise Int8FileError(
                    f'{path!r} is a safetensors file but not an mmpkkd int8 '
                    f"model (its metadata has no 'format': {FORMAT!r}); "
                    'make one with tools/deployment/quantize_int8.py')
            state = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError) as err:
        raise Int8FileError(
            f'{path!r} cannot be read as safetensors ({err}): it is '
            'probably truncated or corrupt. Copy it again or make it again '
            'with tools/deployment/quantize_int8.py.') from err
    return _from_metadata(metadata, state, path)


def _from_metadata(metadata: Dict[str, str], state: Dict[str, torch.Tensor],
                   name: str) -> Dict[str, Any]:
    """The int8 dict of a safetensors file's metadata and tensors."""
    version = metadata.get('version', '')
    data: Dict[str, Any] = {
        'format': metadata['format'],
        'version': int(version) if version.isdigit() else version,
        'state_dict': state,
        'sha256': metadata.get('sha256'),
    }
    if isinstance(data['version'], int) and data['version'] > VERSION:
        return data  # check_int8_dict says: update mmpkkd
    unknown = sorted(set(metadata) - set(METADATA_ENTRIES))
    if unknown:
        raise Int8FileError(f'{name}: unknown metadata entries {unknown}; '
                            f'an int8 file has {list(METADATA_ENTRIES)}')
    for key in ('model_cfg', 'int8_layers', 'meta'):
        try:
            data[key] = json.loads(metadata[key])
        except KeyError:
            raise Int8FileError(f'{name}: no {key!r} in its metadata; make '
                                'it again with '
                                'tools/deployment/quantize_int8.py') from None
        except (ValueError, RecursionError) as err:
            raise Int8FileError(f'{name}: metadata {key!r} is not JSON '
                                f'({err})') from None
    return data


def read_int8(path: str) -> Dict[str, Any]:
    """Load and validate an int8 file (dict as described above).

    Raises:
        Int8FileError: ``path`` is not an int8 model, or one that fails a
            check (see the module docstring).
        CheckpointError: An unsafe, corrupt or missing torch file.
    """
    data = read_int8_dict(path)
    check_int8_dict(data, path)
    return data


def resave_int8(path: str, out: str) -> None:
    """Re-save an int8 file (e.g. version 2) as version 3, unchanged.

    The file is checked as :func:`read_int8` checks it; its model is not
    built.

    Args:
        path: The int8 file to read.
        out: The version 3 file to write (not ``path``).

    Example:
        >>> resave_int8('r20_int8.pth', 'r20_int8.safetensors')
    """
    if osp.abspath(out) == osp.abspath(path):
        raise ValueError('resave_int8: write to another file than the one '
                         'read, then replace it.')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', Int8FormatWarning)
        data = read_int8(path)
    data = dict(data, version=VERSION)
    data['state_dict'] = {k: v.contiguous().clone()
                          for k, v in data['state_dict'].items()}
    data['sha256'] = checksum(data)
    write_int8_dict(data, out)


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


def check_int8_dict(data: Any,
                    name: str = 'checkpoint',
                    warn_old: bool = True) -> None:
    """Raise :class:`Int8FileError` unless ``data`` is an intact int8 file
    this code reads (see the module docstring).

    Args:
        data: A loaded int8 file (:func:`read_int8_dict`).
        name: The file, for messages.
        warn_old: Warn (:class:`Int8FormatWarning`) that a version 2 file
            should be re-saved.
    """
    if not is_int8_dict(data):
        raise Int8FileError(f'{name!r} is not an mmpkkd int8 model (no '
                            f"'format': {FORMAT!r}); make one with "
                            'tools/deployment/quantize_int8.py')
    version = data.get('version')
    if not isinstance(version, int) or version > VERSION:
        raise Int8FileError(f'{name!r} is int8 format version {version!r}; '
                            f'this mmpkkd reads up to {VERSION}. Update '
                            'mmpkkd.')
    if version < TORCH_VERSION:
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
    if version == TORCH_VERSION and warn_old:
        warnings.warn(
            f'{name} is int8 format version {TORCH_VERSION} (a torch pickle, '
            'read with the weights-only loader). It loads, but re-save it as '
            f'version {VERSION} (safetensors, no pickle): python -c "from '
            'mmpkkd.quantization import resave_int8; '
            f"resave_int8('{name}', 'NEW.safetensors')\"",
            Int8FormatWarning, stacklevel=2)


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
        path: The int8 file, or its dict (:func:`read_int8`).
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
        CheckpointError: An unsafe, corrupt or missing torch file
            (version 2).

    Example:
        >>> qmodel = load_int8('work_dirs/r20_int8.safetensors')
        >>> qmodel(torch.randn(1, 3, 32, 32), mode='tensor').shape
        torch.Size([1, 10])
    """
    name = path if isinstance(path, str) else 'int8 model'
    if isinstance(path, dict):  # read (and warned about) by the caller
        data = path
        check_int8_dict(data, name, warn_old=False)
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
    """The float model of a checked file's ``model_cfg``, built in the
    ``mmpkkd`` scope within :func:`build_budget`."""
    with AllocationBudget(build_budget(data), 'the model of an int8 file'):
        return build_model(data['model_cfg']).cpu().eval()
