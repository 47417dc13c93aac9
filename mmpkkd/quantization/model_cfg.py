"""The model config stored in an int8 file: made, checked, compared.

An int8 file carries the config of the float classifier it was made from,
so that it can be rebuilt on its own. That config comes from a file, so it
is data, never a recipe: MMEngine's registry would import any module a
``type`` names when the name is not registered (``'os.system'``, or a bare
module name), and a ``_scope_`` makes it import ``<scope>.registry``.
:func:`check_model_cfg` therefore accepts only

* a top-level ``ImageClassifier`` (what ``save_int8`` writes);
* inside it, ``type`` names registered as model parts in mmpkkd's,
  mmpretrain's or MMEngine's ``MODELS`` / ``WEIGHT_INITIALIZERS`` -- no
  dots, no other whole models, nothing that fetches files or code when
  built (``TIMMBackbone``, Hugging Face wrappers, ``Pretrained`` weights,
  mmpretrain's multi-modal models);
* plain values, no ``_scope_`` key, nesting at most :data:`MAX_DEPTH`
  deep.

:func:`cfg_differences` compares the file's config with a user's config, for
tools that build from the user's config instead.
"""
from typing import Any, Iterator, List, Tuple

#: The model types an int8 file may have at its top level.
TOP_LEVEL_TYPES = ('ImageClassifier', )
#: Registered types refused anywhere: they load weights, models or code
#: from files or the network when built.
EXTERNAL_TYPES = frozenset({
    'TIMMBackbone', 'TimmClassifier', 'HuggingFaceClassifier', 'Pretrained'
})
#: Module prefixes of registered classes refused for the same reason.
EXTERNAL_MODULES = ('mmpretrain.models.multimodal', )
#: Deepest nesting of dicts and lists accepted.
MAX_DEPTH = 32
#: Config keys that do not change the network's inference, ignored when a
#: file's config is compared with a user's config.
TRAINING_ONLY_KEYS = frozenset({
    'init_cfg', 'pretrained', 'train_cfg', 'loss', 'cal_acc', 'topk',
    'batch_augments'
})


class Int8FileError(ValueError):
    """An int8 file that is refused: unsafe, corrupt or unreadable."""


def _registries() -> list:
    from mmpkkd.registry import MODELS, WEIGHT_INITIALIZERS
    chains = []
    for reg in (MODELS, WEIGHT_INITIALIZERS):
        while reg is not None:
            chains.append(reg)
            reg = reg.parent
    return chains


def registered_part(name: Any) -> Any:
    """The class registered as ``name`` in the model-building registries
    (looked up directly: nothing is imported), or None."""
    if not isinstance(name, str) or not name or '.' in name:
        return None
    for reg in _registries():
        if name in reg._module_dict:
            return reg._module_dict[name]
    return None


def _walk(node: Any, path: str, depth: int) -> Iterator[Tuple[str, Any]]:
    """``(path, dict)`` of every dict in a config tree, depth-checked."""
    if depth > MAX_DEPTH:
        raise Int8FileError(f'model_cfg is nested deeper than {MAX_DEPTH} '
                            f'levels at {path}')
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f'{path}.{key}', depth + 1)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _walk(value, f'{path}[{i}]', depth + 1)
    elif not (node is None or isinstance(node, (bool, int, float, str))):
        raise Int8FileError(f'model_cfg holds a {type(node).__name__} at '
                            f'{path}; only plain values are allowed')


def check_model_cfg(model_cfg: Any, name: str = 'int8 file') -> None:
    """Refuse a model config that could do more than build a classifier.

    Args:
        model_cfg: The ``model_cfg`` entry of an int8 file.
        name (str): The file, for messages.

    Raises:
        Int8FileError: With the offending entry's path.

    Example:
        >>> check_model_cfg(dict(type='ImageClassifier',
        ...                      backbone=dict(type='os.system')))
        Traceback (most recent call last):
        Int8FileError: ... model_cfg.backbone.type 'os.system' ...
    """
    from mmengine.model import BaseModel
    if not isinstance(model_cfg, dict):
        raise Int8FileError(f'{name}: model_cfg is not a dict')
    top = model_cfg.get('type')
    if top not in TOP_LEVEL_TYPES:
        raise Int8FileError(
            f'{name}: model_cfg.type {top!r} is not one of '
            f'{list(TOP_LEVEL_TYPES)}; int8 files hold a classifier.')
    for path, node in _walk(model_cfg, 'model_cfg', 0):
        if '_scope_' in node:
            raise Int8FileError(f'{name}: {path} sets _scope_, which would '
                                'import a module; refused.')
        if 'type' not in node or node is model_cfg:
            continue
        kind = node['type']
        cls = registered_part(kind)
        if cls is None:
            raise Int8FileError(
                f'{name}: {path}.type {kind!r} is not a registered model '
                'part of mmpkkd, mmpretrain or MMEngine (dotted names and '
                'unregistered names would be imported); refused.')
        module = getattr(cls, '__module__', '')
        if (kind in EXTERNAL_TYPES or module.startswith(EXTERNAL_MODULES) or
                (isinstance(cls, type) and issubclass(cls, BaseModel))):
            raise Int8FileError(
                f'{name}: {path}.type {kind!r} builds a whole model or loads '
                'files or code when built; an int8 file may not ask for it.')


def plain(cfg: Any) -> Any:
    """A config as plain dicts/lists (what the safe loader accepts)."""
    if hasattr(cfg, 'to_dict'):
        cfg = cfg.to_dict()
    if isinstance(cfg, dict):
        return {str(k): plain(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(plain(v) for v in cfg)
    if cfg is None or isinstance(cfg, (bool, int, float, str)):
        return cfg
    raise TypeError(f'model_cfg holds a {type(cfg).__name__} ({cfg!r}); an '
                    'int8 file stores plain config values only')


def cfg_differences(a: Any, b: Any, path: str = '',
                    ignore=TRAINING_ONLY_KEYS) -> List[str]:
    """``'path: a vs b'`` for every entry where two configs differ (keys in
    ``ignore`` skipped; lists and tuples compare alike)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            if key in ignore:
                continue
            sub = f'{path}.{key}' if path else str(key)
            if key not in a or key not in b:
                out.append(f'{sub}: {a.get(key, "<absent>")!r} vs '
                           f'{b.get(key, "<absent>")!r}')
            else:
                out += cfg_differences(a[key], b[key], sub, ignore)
        return out
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) == len(b):
            return [d for i, (x, y) in enumerate(zip(a, b))
                    for d in cfg_differences(x, y, f'{path}[{i}]', ignore)]
    elif a == b and type(a) is type(b) or (
            isinstance(a, (int, float)) and isinstance(b, (int, float))
            and not isinstance(a, bool) and not isinstance(b, bool)
            and a == b):
        return []
    return [f'{path}: {a!r} vs {b!r}']
