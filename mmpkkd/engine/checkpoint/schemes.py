"""Every checkpoint name MMEngine accepts, loaded weights-only.

MMEngine's :class:`~mmengine.runner.checkpoint.CheckpointLoader` picks a
loader by the name's prefix (its *scheme*) for ``load_from``, ``resume``,
``init_cfg=dict(type='Pretrained', checkpoint=...)`` and
``load_checkpoint`` (the PKKD ``teacher_ckpt``). Its own loaders unpickle
with ``weights_only=False``, so a checkpoint named by URL could run code.
:func:`register_checkpoint_loaders` replaces every one of them:

=============================  =============================================
scheme                         what is loaded
=============================  =============================================
a local path                   the file, by :func:`.safe_torch_load`
``http://``, ``https://``      the file downloaded into torch.hub's cache
                               (``$TORCH_HOME/hub/checkpoints/<file name>``,
                               as before; a file already there is used),
                               then :func:`.safe_torch_load`
``torchvision://``,            torchvision's URL of that name, as https
``modelzoo://``
``open-mmlab://``,             OpenMMLab's URL of that name (or a file in
``openmmlab://``               MMEngine's home), as https / a local path
``mmcls://``                   mmcls's URL of that name, as https; the
                               backbone weights only, as in MMEngine
``s3://``, ``petrel://``       the bytes read by MMEngine's petrel backend,
                               then :func:`.safe_torch_load`
``pavi://``                    refused: download the file with pavi and
                               pass its local path
=============================  =============================================

A scheme that a later MMEngine adds and this table does not know is
refused too (:func:`refuse_unknown_scheme`), and the tests fail until it is
added here.
"""
import io
import os
import os.path as osp
import re
from typing import Any, Callable, Dict, Optional
from urllib.parse import urlparse

from mmengine.runner.checkpoint import (CheckpointLoader, _get_mmengine_home,
                                        _process_mmcls_checkpoint,
                                        get_deprecated_model_names,
                                        get_external_models, get_mmcls_models,
                                        get_torchvision_models)

from .loading import CheckpointError, safe_torch_load

Loader = Callable[..., Any]


def hub_cache_dir() -> str:
    """torch.hub's checkpoint cache: ``<torch.hub.get_dir()>/checkpoints``
    (``$TORCH_HOME/hub/checkpoints``, by default
    ``~/.cache/torch/hub/checkpoints``)."""
    import torch
    return osp.join(torch.hub.get_dir(), 'checkpoints')


def cached_file_of(url: str, model_dir: Optional[str] = None) -> str:
    """Where a download of ``url`` is cached: the URL's file name in
    ``model_dir`` (default: :func:`hub_cache_dir`), as torch.hub names it.

    Example:
        >>> cached_file_of('https://host/models/r50-0676ba61.pth', '/c')
        '/c/r50-0676ba61.pth'
    """
    name = osp.basename(urlparse(url).path)
    if not name:
        raise CheckpointError(
            f'Checkpoint URL {url!r} names no file; give the URL of a .pth '
            'file.')
    return osp.join(model_dir or hub_cache_dir(), name)


def _download(url: str, path: str) -> None:
    """Download ``url`` to ``path`` (torch.hub's downloader: a temporary
    file renamed when complete; the SHA-256 prefix that a file name such
    as ``resnet50-0676ba61.pth`` carries is checked)."""
    import torch
    os.makedirs(osp.dirname(path), exist_ok=True)
    match = torch.hub.HASH_REGEX.search(osp.basename(path))
    try:
        torch.hub.download_url_to_file(
            url, path, match.group(1) if match else None,
            progress=os.isatty(2))
    except Exception as err:  # noqa: BLE001 - network, HTTP, hash
        raise CheckpointError(
            f'Could not download checkpoint {url}: {err}. Download it '
            f'yourself and pass the local file, or put it at {path}.'
        ) from err


def download_to_cache(url: str, model_dir: Optional[str] = None) -> str:
    """The cached file of ``url``, downloaded first if absent.

    In a distributed run the local rank 0 downloads while the other ranks
    wait, as MMEngine does.

    Returns:
        str: The file's path in the cache.
    """
    from mmengine.dist import barrier, get_dist_info
    path = cached_file_of(url, model_dir)
    rank, world_size = get_dist_info()
    local_rank = int(os.environ.get('LOCAL_RANK', rank))
    if local_rank == 0 and not osp.isfile(path):
        _download(url, path)
    if world_size > 1:
        barrier()
    if not osp.isfile(path):
        _download(url, path)
    return path


# -------------------------------------------------------------- loaders
# Named ``load_from_<scheme>``: MMEngine logs "Loads checkpoint by <scheme>
# backend" from the name.


def load_from_local(filename: str, map_location=None) -> Any:
    """A local file."""
    return safe_torch_load(osp.expanduser(filename), map_location)


def load_from_http(url: str, map_location=None,
                   model_dir: Optional[str] = None) -> Any:
    """A URL: downloaded into the hub cache, then loaded weights-only."""
    return safe_torch_load(download_to_cache(url, model_dir), map_location)


def _model_url(table: Dict[str, str], name: str, scheme: str) -> str:
    if name not in table:
        import difflib
        close = difflib.get_close_matches(name, list(table), n=3)
        hint = f' Did you mean {", ".join(close)}?' if close else ''
        raise CheckpointError(
            f'{scheme}{name} is not a known checkpoint name.{hint}')
    return table[name]


def load_from_torchvision(filename: str, map_location=None) -> Any:
    """``torchvision://NAME`` (and the old ``modelzoo://NAME``)."""
    scheme = 'modelzoo://' if filename.startswith('modelzoo://') \
        else 'torchvision://'
    url = _model_url(get_torchvision_models(), filename[len(scheme):],
                     scheme)
    return load_from_http(url, map_location)


def load_from_openmmlab(filename: str, map_location=None) -> Any:
    """``open-mmlab://NAME`` / ``openmmlab://NAME``."""
    scheme = 'open-mmlab://' if filename.startswith('open-mmlab://') \
        else 'openmmlab://'
    name = filename[len(scheme):]
    name = get_deprecated_model_names().get(name, name)
    url = _model_url(get_external_models(), name, scheme)
    if url.startswith(('http://', 'https://')):
        return load_from_http(url, map_location)
    return safe_torch_load(osp.join(_get_mmengine_home(), url), map_location)


def load_from_mmcls(filename: str, map_location=None) -> Any:
    """``mmcls://NAME``: the backbone weights of an mmcls checkpoint."""
    url = _model_url(get_mmcls_models(), filename[len('mmcls://'):],
                     'mmcls://')
    return _process_mmcls_checkpoint(load_from_http(url, map_location))


def _read_remote(filename: str, backend: str) -> bytes:
    """The bytes of ``filename`` from MMEngine's file backend ``backend``."""
    from mmengine.fileio import get_file_backend
    return get_file_backend(
        filename, backend_args={'backend': backend}).get(filename)


def load_from_ceph(filename: str, map_location=None,
                   backend: str = 'petrel') -> Any:
    """``s3://`` / ``petrel://`` (optionally ``cluster:s3://``)."""
    with io.BytesIO(_read_remote(filename, backend)) as buffer:
        buffer.name = filename
        return safe_torch_load(buffer, map_location)


def load_from_pavi(filename: str, map_location=None) -> Any:
    """``pavi://``: refused (pavi's client saves a file whose loading we
    cannot route through the safe loader)."""
    raise CheckpointError(
        f'{filename}: pavi:// checkpoints are not loaded directly. Download '
        'the file with pavi (modelcloud) and pass its local path; it is then '
        'read with the weights-only loader.')


def refuse_unknown_scheme(filename: str, map_location=None) -> Any:
    """A scheme of MMEngine that :data:`SCHEME_LOADERS` does not know."""
    raise CheckpointError(
        f'{filename}: this kind of checkpoint name is not supported, because '
        'it could not be loaded with the weights-only loader. Download the '
        'file and pass its local path.')


#: MMEngine's scheme prefixes (regular expressions, matched at the start of
#: the name) and the loader of each.
SCHEME_LOADERS: Dict[str, Loader] = {
    '': load_from_local,
    'http://': load_from_http,
    'https://': load_from_http,
    'torchvision://': load_from_torchvision,
    'modelzoo://': load_from_torchvision,
    'open-mmlab://': load_from_openmmlab,
    'openmmlab://': load_from_openmmlab,
    'mmcls://': load_from_mmcls,
    r'(\S+\:)?s3://': load_from_ceph,
    r'(\S+\:)?petrel://': load_from_ceph,
    'pavi://': load_from_pavi,
}


def loader_for(filename: str) -> Loader:
    """The loader of ``filename``, chosen as MMEngine chooses (the longest
    matching prefix first)."""
    for prefix in sorted(SCHEME_LOADERS, reverse=True):
        if re.match(prefix, filename) is not None:
            return SCHEME_LOADERS[prefix]
    return load_from_local  # pragma: no cover - '' matches everything


def has_scheme(filename: str) -> bool:
    """Whether ``filename`` is a URL or a named checkpoint, not a path."""
    return loader_for(filename) is not load_from_local


def load_checkpoint_file(filename: str, map_location=None) -> Any:
    """Load a checkpoint by path or by any scheme, weights-only.

    Args:
        filename (str): A local path, a URL, ``torchvision://resnet50``, ...
            (see the module's table).
        map_location: As in :func:`torch.load`; None maps to the CPU.

    Returns:
        Any: The checkpoint, usually a dict with a ``state_dict``.

    Raises:
        CheckpointError: The file is missing, unsafe, corrupt, cannot be
            downloaded, or its scheme is refused.

    Example:
        >>> ckpt = load_checkpoint_file('work_dirs/ann/epoch_15.pth')
        >>> ckpt = load_checkpoint_file('https://host/r20-1a2b3c4d.pth')
    """
    return loader_for(filename)(filename, map_location)


def read_checkpoint(filename: str) -> Any:
    """:func:`load_checkpoint_file` to the CPU: how the tools read the
    checkpoint they are given."""
    return load_checkpoint_file(filename, 'cpu')


def register_checkpoint_loaders() -> None:
    """Install :data:`SCHEME_LOADERS` in MMEngine's ``CheckpointLoader``;
    any other scheme it has gets :func:`refuse_unknown_scheme`."""
    for prefix in list(CheckpointLoader._schemes):
        if prefix not in SCHEME_LOADERS:
            CheckpointLoader.register_scheme(
                prefix, refuse_unknown_scheme, force=True)
    for prefix, loader in SCHEME_LOADERS.items():
        CheckpointLoader.register_scheme(prefix, loader, force=True)
