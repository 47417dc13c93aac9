"""Reading a config and its ``--cfg-options`` with errors a user can act on.

* A config that does not exist names the closest file in its folder.
* A config with a syntax error names the file and the line.
* An override whose key the config does not have fails and suggests the
  closest existing key (``max_epochs`` -> ``train_cfg.max_epochs``)
  instead of being merged as a new, unused entry.
* An override of the wrong kind (text where the config has a number) fails
  before anything is built.
"""
import ast
import difflib
import inspect
import os
import os.path as osp
from typing import Any, Dict, Iterator, List, Optional, Tuple

from .errors import INPUT_EXIT, USAGE_EXIT, UserError

#: Top-level entries MMEngine's runner reads although no config sets them
#: (besides the parameters of ``Runner.__init__``).
EXTRA_RUNNER_KEYS = ('runner_type', 'find_unused_parameters', 'compile',
                     'strategy', 'custom_imports')


def read_config(path: str, cfg_options: Optional[dict] = None,
                option_name: str = '--cfg-options'):
    """Load ``path`` with :meth:`mmengine.config.Config.fromfile` and apply
    ``cfg_options`` after checking that every key exists.

    Args:
        path (str): The config file.
        cfg_options (dict, optional): ``{dotted.key: value}`` overrides.
        option_name (str): How the overrides were given, for messages.

    Returns:
        mmengine.config.Config: The config.

    Raises:
        UserError: The file does not exist or is not a file (exit status
            2), it cannot be parsed (1, naming the file and line), or an
            override names a key the config does not have (2).
    """
    from mmengine.config import Config
    if not osp.isfile(path):
        raise UserError(missing_file_message(path, 'config'), USAGE_EXIT)
    try:
        cfg = Config.fromfile(path)
    except SyntaxError as err:
        file, line, msg = find_syntax_error(path) or (path, err.lineno,
                                                      err.msg)
        where = f', line {line}' if line else ''
        raise UserError(
            f'config {file}{where} has a syntax error: {msg}. Fix the '
            'Python syntax there.', INPUT_EXIT) from err
    except (FileNotFoundError, ImportError) as err:
        raise UserError(
            f'config {path} cannot be loaded: {err}. Check its _base_ '
            'files and imports.', INPUT_EXIT) from err
    if cfg_options:
        check_cfg_options(cfg, cfg_options, path, option_name)
        cfg.merge_from_dict(cfg_options)
    return cfg


def find_syntax_error(path: str, depth: int = 8
                      ) -> Optional[Tuple[str, Optional[int], str]]:
    """``(file, line, message)`` of the first syntax error in a config or
    the ``_base_`` files it names (MMEngine's own error does not say which
    file), or None."""
    try:
        with open(path) as f:
            tree = ast.parse(f.read(), filename=path)
    except SyntaxError as err:
        return path, err.lineno, err.msg
    except OSError:
        return None
    if depth == 0:
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_'
                for t in node.targets):
            try:
                bases = ast.literal_eval(node.value)
            except ValueError:
                return None
            for base in [bases] if isinstance(bases, str) else bases:
                found = find_syntax_error(
                    osp.join(osp.dirname(path), base), depth - 1)
                if found:
                    return found
    return None


def missing_file_message(path: str, what: str) -> str:
    """``what PATH does not exist`` plus the closest name in its folder."""
    if osp.isdir(path):
        return f'{what} {path} is a directory, not a file'
    folder = osp.dirname(path) or '.'
    message = f'{what} file {path} does not exist'
    if osp.isdir(folder):
        names = sorted(os.listdir(folder))
        close = difflib.get_close_matches(osp.basename(path), names, n=1)
        if close:
            message += f'; did you mean {osp.join(folder, close[0])}?'
    return message


def check_cfg_options(cfg, cfg_options: Dict[str, Any], config: str = '',
                      option_name: str = '--cfg-options') -> None:
    """Refuse overrides whose key the config does not have.

    A key may be new only where a new entry can take effect: as the
    argument of a component built from a ``type`` (checked against the
    signature of the registered class when it takes no ``**kwargs``), or as
    a top-level entry that MMEngine's runner reads (``randomness``,
    ``load_from``, ...). Anything else -- ``max_epochs`` at the top, or a
    misspelt ``train_cfg.max_epoch`` -- would be merged and silently
    ignored, so it is an error.

    Raises:
        UserError: The first unknown key, with the closest existing key.
    """
    tree = cfg.to_dict() if hasattr(cfg, 'to_dict') else dict(cfg)
    for key in cfg_options:
        problem = _unknown_part(tree, key.split('.'))
        if problem is None:
            continue
        prefix, part = problem
        where = f"under '{prefix}'" if prefix else 'at the top level'
        message = (f"{option_name} {key}: the config {config} has no key "
                   f"'{part}' {where}, so the value would be ignored.")
        suggestion = closest_key(key, list(flatten_keys(tree)))
        if suggestion:
            message += f' Did you mean {suggestion}?'
        raise UserError(message, USAGE_EXIT)
    for key, value in cfg_options.items():
        problem = wrong_type(_current_value(tree, key.split('.')), value)
        if problem:
            raise UserError(
                f'{option_name} {key}={value!r}: {problem} (the config '
                f'{config} has {_current_value(tree, key.split("."))!r}).',
                USAGE_EXIT)


_MISSING = object()


def _current_value(tree: Any, parts: List[str]) -> Any:
    """The config's value at a key path, or ``_MISSING``."""
    node = tree
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif (isinstance(node, (list, tuple)) and part.isdigit()
              and int(part) < len(node)):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def wrong_type(current: Any, value: Any) -> Optional[str]:
    """Why ``value`` cannot replace the config's ``current`` value, or None.

    Only kinds that cannot work are refused: text where the config has a
    number or True/False, and a plain value where it has a section (dict).
    None is always accepted (it switches a part off), and so is anything
    where the config has None or a list (many options take one value or
    several).

    Example:
        >>> wrong_type(15, 'abc')
        'a number is expected, not text'
        >>> wrong_type(0.1, 1) is None
        True
    """
    if current is _MISSING or current is None or value is None:
        return None
    if isinstance(current, bool):
        if not isinstance(value, bool):
            return 'True or False is expected'
        return None
    if isinstance(current, (int, float)):
        if isinstance(value, str):
            return 'a number is expected, not text'
        if isinstance(value, (dict, list, tuple)):
            return 'a number is expected'
        return None
    if isinstance(current, dict) and not isinstance(value, dict):
        return ('it is a section of the config; set the keys inside it '
                '(key.subkey=value)')
    return None


def _unknown_part(tree: Any, parts: List[str]) -> Optional[Tuple[str, str]]:
    """``(prefix, part)`` of the first part of a key path that cannot be
    set with effect, or None when the whole path is fine."""
    node = tree
    for i, part in enumerate(parts):
        prefix = '.'.join(parts[:i])
        if isinstance(node, dict):
            if part in node:
                node = node[part]
                continue
            if i == 0 and part in runner_keys():
                return None
            if 'type' in node and _accepts(node['type'], part):
                return None
            return prefix, part
        if isinstance(node, (list, tuple)):
            if part.isdigit() and int(part) < len(node):
                node = node[int(part)]
                continue
            return prefix, part
        return prefix, part  # a key below a plain value
    return None


def runner_keys() -> set:
    """Top-level config entries that MMEngine's runner reads."""
    from mmengine.runner import Runner
    params = inspect.signature(Runner.__init__).parameters
    return set(params) - {'self'} | set(EXTRA_RUNNER_KEYS)


def _accepts(type_name: Any, key: str) -> bool:
    """Whether the component ``type_name`` may take argument ``key``.

    True unless the type is a registered class whose ``__init__`` has no
    ``**kwargs`` and no parameter ``key`` (unknown types are let through:
    building them reports the problem).
    """
    if not isinstance(type_name, str):
        return True
    cls = _registered_class(type_name)
    if cls is None or not inspect.isclass(cls):
        return True
    try:
        params = inspect.signature(cls.__init__).parameters.values()
    except (TypeError, ValueError):
        return True
    names = {p.name for p in params}
    return key in names or any(p.kind is p.VAR_KEYWORD for p in params)


def _registered_class(name: str) -> Any:
    """The object registered as ``name`` in any mmpkkd registry (or its
    mmpretrain / MMEngine ancestors); None if absent. Imports nothing."""
    from mmpkkd import registry
    for reg_name in registry.__all__:
        reg = getattr(registry, reg_name)
        while reg is not None:
            if name in reg._module_dict:
                return reg._module_dict[name]
            reg = reg.parent
    return None


def flatten_keys(tree: Any, prefix: str = '',
                 depth: int = 6) -> Iterator[str]:
    """Every dotted key path of a config (lists by index), depth-limited."""
    if depth == 0:
        return
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, (list, tuple)):
        items = ((str(i), v) for i, v in enumerate(tree))
    else:
        return
    for key, value in items:
        path = f'{prefix}.{key}' if prefix else str(key)
        yield path
        yield from flatten_keys(value, path, depth - 1)


def closest_key(key: str, candidates: List[str]) -> Optional[str]:
    """The candidate :mod:`difflib` finds closest to ``key``.

    Candidates ending with the same last part (``max_epochs`` ->
    ``train_cfg.max_epochs``) come first.

    Example:
        >>> closest_key('max_epochs', ['train_cfg.max_epochs', 'model'])
        'train_cfg.max_epochs'
        >>> closest_key('train_cfg.max_epoch', ['train_cfg.max_epochs'])
        'train_cfg.max_epochs'
    """
    last = key.rsplit('.', 1)[-1]
    same_leaf = [c for c in candidates if c.rsplit('.', 1)[-1] == last]
    if same_leaf:
        return difflib.get_close_matches(key, same_leaf, n=1,
                                         cutoff=0.0)[0]
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    if close:
        return close[0]
    leaves = {c.rsplit('.', 1)[-1]: c for c in candidates}
    close = difflib.get_close_matches(last, list(leaves), n=1, cutoff=0.75)
    return leaves[close[0]] if close else None
