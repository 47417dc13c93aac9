"""Planning a sweep: its settings checked against the config, and one
:class:`Run` (a setting and a seed, in its own work dir) per training."""
import hashlib
import json
import os.path as osp
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

from mmpkkd.utils import INPUT_EXIT, UserError, read_config
from .spec import SEED_KEY, Setting, expand_settings, format_value


@dataclass
class Run:
    """One training: a setting and a seed.

    Attributes:
        setting (Setting): Its setting.
        seed (int): Its seed.
        work_dir (str): Its work dir, ``OUT/<setting>/seed_<seed>``.
        options (dict): Every ``--cfg-options`` of the run, as text.
        final_step (int): The last epoch (or iteration) of the training.
        config_hash (str): Hash of the run's resolved config (without the
            seed), to notice a config edited between sittings.
    """
    setting: Setting
    seed: int
    work_dir: str
    options: Dict[str, str]
    final_step: int
    config_hash: str

    @property
    def label(self) -> str:
        """``<setting> seed <seed>``, for messages."""
        return f'{self.setting.name} seed {self.seed}'


def config_hash(cfg) -> str:
    """A short hash of a resolved :class:`mmengine.config.Config`."""
    text = json.dumps(cfg.to_dict(), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def final_step(cfg) -> int:
    """The training's last epoch (epoch-based) or iteration.

    Raises:
        UserError: The config has neither ``train_cfg.max_epochs`` nor
            ``train_cfg.max_iters``.
    """
    train_cfg = cfg.get('train_cfg') or {}
    step = train_cfg.get('max_epochs') or train_cfg.get('max_iters')
    if not step:
        raise UserError('the config has no train_cfg.max_epochs or '
                        'max_iters: the sweep cannot tell when a run is '
                        'finished.', INPUT_EXIT)
    return int(step)


def plan_runs(config: str, spec: Dict[str, Any], out_dir: str
              ) -> Tuple[List[Setting], List[Run], str]:
    """Every setting of ``spec``, checked against the config, and its runs.

    Args:
        config (str): The training config.
        spec (dict): A spec from :func:`~mmpkkd.experiments.read_spec`.
        out_dir (str): The sweep's folder.

    Returns:
        tuple: The settings; the runs in training order (seed by seed:
        every setting's first seed before any second seed); the unit of
        training, ``'epoch'`` or ``'iteration'``.

    Raises:
        UserError: The config has no validation, an option names a key the
            config does not have, or a value cannot go through
            ``--cfg-options``.

    Example:
        >>> settings, runs, unit = plan_runs(
        ...     'configs/cnn/cnn_resnet20_1xb64-15e_digits.py',
        ...     read_spec(seeds=[0, 1]), 'work_dirs/sweeps/cnn')
        >>> [r.label for r in runs], unit
        (['default seed 0', 'default seed 1'], 'epoch')
    """
    base_options = dict(spec['options'])
    base_cfg = read_config(config, base_options, option_name='options')
    if base_cfg.get('val_cfg') is None or base_cfg.get(
            'val_dataloader') is None:
        raise UserError(f'config {config} has no validation: the sweep '
                        'tabulates the validation metric.', INPUT_EXIT)
    settings = expand_settings(spec, base_cfg.to_dict())
    resolved = {}
    for setting in settings:
        options = {**base_options, **setting.options}
        cfg = read_config(config, options,
                          option_name=f'setting {setting.name!r}, option')
        text = {k: format_value(v) for k, v in options.items()}
        resolved[setting.name] = (text, final_step(cfg), config_hash(cfg))
    runs = []
    for seed in spec['seeds']:
        for setting in settings:
            text, step, digest = resolved[setting.name]
            runs.append(
                Run(setting, seed,
                    osp.join(out_dir, setting.name, f'seed_{seed}'),
                    {**text, SEED_KEY: str(seed)}, step, digest))
    unit = 'epoch' if (base_cfg.get('train_cfg') or {}).get(
        'max_epochs') else 'iteration'
    return settings, runs, unit
