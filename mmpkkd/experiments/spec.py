"""The sweep's spec language: which settings of ``--cfg-options`` to train,
over which seeds.

A spec is a mapping (a YAML or JSON file, plus the command line) with the
keys of :data:`SPEC_KEYS`:

* ``one_at_a_time``: ``{factor: [values]}``; the config's own values (the
  ``default`` setting) and, for each factor, each value with all other
  factors at the default. A value equal to the config's is the default
  setting, not a second run of it.
* ``grid``: ``{factor: [values]}``; every combination of the factors.
* ``settings``: a list of explicit settings ``{key: value, ...}``.
* ``options``: ``{key: value}`` applied to every run (a proxy budget, the
  validation split).
* ``seeds``: each setting is trained once per seed (``randomness.seed``).
* ``metric``: the validation metric to tabulate.

A factor is a dotted config key, or a name whose values are mappings of
several keys set together (plus an optional ``name``), e.g. both kernels'
``sigma``::

    one_at_a_time:
      model.loss_blend.alpha: [0.1, 0.5, 1]
      sigma:
        - {name: sigma=fixed, model.student_kernel.sigma: 50.0,
           model.teacher_kernel.sigma: 5.0}

:func:`read_spec` reads and checks a spec; :func:`expand_settings` turns it
into the list of :class:`Setting`.
"""
import itertools
import json
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from mmengine.config import DictAction

from mmpkkd.utils import INPUT_EXIT, USAGE_EXIT, UserError
from mmpkkd.utils.config import missing_file_message

#: The keys a spec may have.
SPEC_KEYS = ('seeds', 'options', 'one_at_a_time', 'grid', 'settings',
             'metric')
#: The option each run's seed goes to.
SEED_KEY = 'randomness.seed'
#: The name of the setting with the config's own values.
DEFAULT_NAME = 'default'
#: The metric tabulated when the spec names none.
DEFAULT_METRIC = 'accuracy/top1'
#: What :func:`lookup` returns for a key the config does not have.
MISSING = object()


@dataclass
class Setting:
    """One combination of option values.

    Attributes:
        name (str): Its row in the table and the folder of its runs.
        options (dict): ``{dotted key: value}`` relative to the config (and
            the sweep's common options); empty for the default.
    """
    name: str
    options: Dict[str, Any] = field(default_factory=dict)


def format_value(value: Any) -> str:
    """``value`` as text that ``--cfg-options`` parses back to it.

    Raises:
        UserError: The value cannot go through ``--cfg-options`` (a string
            with a comma, a space, a quote or a bracket; a dict).

    Example:
        >>> format_value([0.5, 'auto']), format_value(None)
        ('[0.5,auto]', 'None')
    """
    if isinstance(value, dict):
        raise UserError(
            f'the value {value!r} is a mapping, which --cfg-options cannot '
            'pass; set its keys one by one (KEY.SUBKEY=VALUE).', USAGE_EXIT)
    if isinstance(value, (list, tuple)):
        inner = ','.join(format_value(v) for v in value)
        text = f'[{inner}]' if isinstance(value, list) else f'({inner},)' \
            if len(value) == 1 else f'({inner})'
    elif isinstance(value, bool) or value is None:
        text = str(value)
    elif isinstance(value, (int, float)):
        text = repr(value)
    else:
        text = str(value)
    if DictAction._parse_iterable(text) != value:
        raise UserError(
            f'the value {value!r} cannot be passed through --cfg-options '
            '(it would read back as '
            f'{DictAction._parse_iterable(text)!r}); write it in a config '
            'file instead.', USAGE_EXIT)
    return text


def format_options(options: Mapping[str, Any]) -> str:
    """``KEY=VALUE`` pairs joined by spaces, as ``--cfg-options`` takes
    them.

    Example:
        >>> format_options({'train_cfg.max_epochs': 5, 'model.x': 'auto'})
        'train_cfg.max_epochs=5 model.x=auto'
    """
    return ' '.join(f'{k}={format_value(v)}' for k, v in options.items())


def lookup(tree: Any, key: str) -> Any:
    """The value at a dotted key of a config dict (list items by index),
    or :data:`MISSING`.

    Example:
        >>> lookup({'layers': [{'sigma': 'auto'}]}, 'layers.0.sigma')
        'auto'
    """
    node = tree
    for part in key.split('.'):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.isdigit() and int(
                part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
    return node


def factor_values(factor: str, values: Any) -> List[Dict[str, Any]]:
    """The option dicts of one factor: ``KEY: [v1, v2]`` gives
    ``[{KEY: v1}, {KEY: v2}]``; mapping values are taken as they are (keys
    set together, plus an optional ``name``).

    Raises:
        UserError: A value that is not a mapping under a factor that is
            not a dotted key.
    """
    if not isinstance(values, (list, tuple)):
        values = [values]
    out = []
    for value in values:
        if isinstance(value, dict):
            out.append(dict(value))
        elif '.' not in factor:
            raise UserError(
                f'factor {factor!r}: a value that is not a mapping needs '
                'the factor to be a dotted config key (e.g. '
                'model.loss_blend.alpha); a named factor lists mappings '
                '{key: value, ...}.', USAGE_EXIT)
        else:
            out.append({factor: value})
    return out


def setting_name(options: Dict[str, Any]) -> str:
    """``default``, or ``key=value`` pairs joined by ``,`` with characters
    other than letters, digits and ``._=+-,`` replaced by ``_``.

    Example:
        >>> setting_name({'model.loss_blend.alpha': 0.5})
        'model.loss_blend.alpha=0.5'
    """
    if not options:
        return DEFAULT_NAME
    text = ','.join(f'{k}={format_value(v)}' for k, v in options.items())
    return ''.join(c if c.isalnum() or c in '._=+-,' else '_' for c in text)


def expand_settings(spec: Dict[str, Any], base: Dict[str, Any]
                    ) -> List[Setting]:
    """The settings of a spec, relative to ``base`` (the config with the
    common options applied, as a dict).

    Options equal to the base's value are dropped, so the one-at-a-time
    value that is the default's own is the ``default`` row; settings that
    end up with the same options are one setting (the first name wins).
    Order: the default (with ``one_at_a_time``), the one-at-a-time values
    factor by factor, the grid, the explicit settings.

    Raises:
        UserError: Two different settings with one name.

    Example:
        >>> spec = {'one_at_a_time': {'model.alpha': [0.1, 0.5]}}
        >>> [s.name for s in expand_settings(spec, {'model': {'alpha': 0.1}})]
        ['default', 'model.alpha=0.5']
    """
    raw: List[Dict[str, Any]] = []
    oat = spec.get('one_at_a_time') or {}
    if oat:
        raw.append({})
    for factor, values in oat.items():
        raw.extend(factor_values(factor, values))
    grid = spec.get('grid') or {}
    if grid:
        axes = [factor_values(f, v) for f, v in grid.items()]
        for combo in itertools.product(*axes):
            merged: Dict[str, Any] = {}
            for part in combo:
                merged.update(part)
            raw.append(merged)
    for item in spec.get('settings') or []:
        if not isinstance(item, dict):
            raise UserError(
                f'settings: each entry is a mapping {{key: value}}, got '
                f'{item!r}.', USAGE_EXIT)
        raw.append(dict(item))

    settings: List[Setting] = []
    by_options: Dict[str, Setting] = {}
    for options in raw:
        name = options.pop('name', None)
        kept = {k: v for k, v in options.items() if lookup(base, k) != v}
        ident = json.dumps(sorted((k, repr(v)) for k, v in kept.items()))
        if ident in by_options:
            continue
        setting = Setting(str(name) if name else setting_name(kept), kept)
        clash = [s for s in settings if s.name == setting.name]
        if clash:
            raise UserError(
                f'two settings are named {setting.name!r}: {clash[0].options}'
                f' and {kept}; give them different names.', USAGE_EXIT)
        by_options[ident] = setting
        settings.append(setting)
    return settings


def parse_setting(pairs: Sequence[str]) -> Dict[str, Any]:
    """One setting from ``KEY=VALUE`` texts (``--setting``); values are
    parsed as ``--cfg-options`` parses them, except ``name``.

    Raises:
        UserError: A text without ``=``.

    Example:
        >>> parse_setting(['name=mine', 'model.alpha=0.5'])
        {'name': 'mine', 'model.alpha': 0.5}
    """
    setting: Dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition('=')
        if not sep:
            raise UserError(f'--setting {pair}: expected KEY=VALUE.',
                            USAGE_EXIT)
        setting[key] = text if key == 'name' else \
            DictAction._parse_iterable(text)
    return setting


def _read_spec_file(path: str) -> Dict[str, Any]:
    """The mapping in a YAML or JSON spec file, its keys checked."""
    if not osp.isfile(path):
        raise UserError(missing_file_message(path, 'spec'), USAGE_EXIT)
    import yaml
    with open(path) as f:
        try:
            spec = yaml.safe_load(f) or {}
        except yaml.YAMLError as err:
            raise UserError(f'spec {path} is not valid YAML/JSON: '
                            f'{err}', INPUT_EXIT) from err
    if not isinstance(spec, dict):
        raise UserError(f'spec {path} must be a mapping with keys '
                        f'{", ".join(SPEC_KEYS)}.', INPUT_EXIT)
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise UserError(
            f'spec {path}: unknown key(s) {", ".join(unknown)}; '
            f'known: {", ".join(SPEC_KEYS)}.', INPUT_EXIT)
    return spec


def read_spec(path: Optional[str] = None,
              options: Optional[Dict[str, Any]] = None,
              one_at_a_time: Optional[Dict[str, Any]] = None,
              grid: Optional[Dict[str, Any]] = None,
              settings: Sequence[Union[Dict[str, Any], Sequence[str]]] = (),
              seeds: Optional[List[int]] = None,
              metric: Optional[str] = None) -> Dict[str, Any]:
    """A spec file (if any) merged with further factors, e.g. from the
    command line, and checked.

    ``options``, ``one_at_a_time`` and ``grid`` update the file's (a key
    given here wins); ``settings`` are added after the file's; ``seeds``
    and ``metric`` replace the file's.

    Args:
        path (str, optional): A YAML or JSON spec file.
        options (dict, optional): Options of every run.
        one_at_a_time (dict, optional): ``{factor: values}``.
        grid (dict, optional): ``{factor: values}``.
        settings (Sequence): More explicit settings, each a mapping or a
            list of ``KEY=VALUE`` texts (see :func:`parse_setting`).
        seeds (list[int], optional): The seeds (default: the file's,
            else ``[0]``).
        metric (str, optional): The metric (default: the file's, else
            :data:`DEFAULT_METRIC`).

    Returns:
        dict: Every key of :data:`SPEC_KEYS`; with no factor at all,
        ``settings`` is ``[{}]`` (the config as it is).

    Raises:
        UserError: The file is missing, not a mapping or has unknown keys;
            a setting is malformed; the seeds are not distinct integers;
            the seed is set as an option.

    Example:
        >>> spec = read_spec(grid={'model.alpha': [0.1, 1]}, seeds=[0, 1])
        >>> spec['seeds'], spec['settings'], spec['metric']
        ([0, 1], [], 'accuracy/top1')
    """
    spec = dict(_read_spec_file(path)) if path else {}
    spec['options'] = {**(spec.get('options') or {}), **(options or {})}
    spec['one_at_a_time'] = {**(spec.get('one_at_a_time') or {}),
                             **(one_at_a_time or {})}
    spec['grid'] = {**(spec.get('grid') or {}), **(grid or {})}
    extra = [dict(s) if isinstance(s, Mapping) else parse_setting(s)
             for s in settings]
    spec['settings'] = list(spec.get('settings') or []) + extra
    seeds = seeds if seeds else (spec.get('seeds') or [0])
    if not isinstance(seeds, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise UserError(f'seeds must be a list of integers, got {seeds!r}.',
                        USAGE_EXIT)
    if len(set(seeds)) != len(seeds):
        raise UserError(f'seeds {seeds} repeat a seed.', USAGE_EXIT)
    spec['seeds'] = seeds
    spec['metric'] = metric or spec.get('metric') or DEFAULT_METRIC
    if not (spec['one_at_a_time'] or spec['grid'] or spec['settings']):
        spec['settings'] = [{}]  # the config as it is, over the seeds
    if SEED_KEY in spec['options'] or any(
            SEED_KEY in s for s in spec['settings']):
        raise UserError(f'{SEED_KEY} is set per run from the seeds; use '
                        '--seeds (or the spec\'s seeds) instead.', USAGE_EXIT)
    return spec
