"""Build the networks of a config for analysis: twins, distillers, inputs."""
import argparse
import os.path as osp
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmpkkd.models.layers import Adder2d
from mmpkkd.registry import MODELS
from mmpkkd.utils import load_config

#: Twin folders: a config in ``configs/ann/`` has its CNN in ``configs/cnn/``
#: under the same file name, and the other way round.
TWIN_DIRS = {'ann': 'cnn', 'cnn': 'ann'}


class NamedModel(NamedTuple):
    """A network to analyse: label (``'CNN'``/``'ANN'``), origin, module."""
    label: str
    source: str
    model: nn.Module


def read_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config as ``tools/train.py`` and ``tools/test.py`` do
    (:func:`mmpkkd.utils.load_config`, ``--cfg-options`` applied), with no
    work dir or launcher given."""
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'Config {path!r} not found; pass a file such as '
            'configs/ann/resnet20_cifar10.py.')
    return load_config(
        argparse.Namespace(config=path, cfg_options=cfg_options,
                           work_dir=None, launcher='none'))


def build_model(model_cfg: dict) -> nn.Module:
    """Build a model config in the ``mmpkkd`` scope (CPU, eval mode)."""
    with DefaultScope.overwrite_default_scope('mmpkkd'):
        model = MODELS.build(model_cfg)
    return model.eval()


def is_adder_net(model: nn.Module) -> bool:
    """True if any layer of ``model`` is an :class:`Adder2d`."""
    return any(isinstance(m, Adder2d) for m in model.modules())


def is_distiller_cfg(model_cfg: dict) -> bool:
    """True for a PKKD-style config with ``teacher`` and ``student``."""
    return 'teacher' in model_cfg and 'student' in model_cfg


def twin_config_path(path: str) -> Optional[str]:
    """``configs/ann/X.py`` <-> ``configs/cnn/X.py``; None elsewhere.

    Example:
        >>> twin_config_path('configs/ann/resnet20_cifar10.py')
        'configs/cnn/resnet20_cifar10.py'
    """
    folder, name = osp.split(osp.normpath(path))
    parent, kind = osp.split(folder)
    if kind not in TWIN_DIRS:
        return None
    return osp.join(parent, TWIN_DIRS[kind], name)


def networks_to_compare(path: str,
                        twin: Optional[str] = None,
                        with_twin: bool = True,
                        cfg_options: Optional[dict] = None
                        ) -> Tuple[List[NamedModel], List[str]]:
    """The CNN and the ANN to report for a config, CNN first.

    * distiller config (``configs/pkkd/``): its teacher and its student;
    * ``configs/ann/X.py`` / ``configs/cnn/X.py``: that network and its
      twin in the other folder (if the file exists);
    * any other classifier config: that network (plus ``twin`` if given).

    Args:
        path (str): Config file.
        twin (str, optional): Config of the network to compare with,
            instead of the one found by :func:`twin_config_path`.
        with_twin (bool): False reports the config's network(s) only.
        cfg_options (dict, optional): Overrides for ``path`` (not the twin).

    Returns:
        tuple[list[NamedModel], list[str]]: The networks (labelled ``CNN``
        or ``ANN`` by whether they contain adder layers) and notes for the
        report (e.g. a twin that was not found).
    """
    cfg = read_config(path, cfg_options)
    notes = []
    if is_distiller_cfg(cfg.model):
        found = [(f'{path} (teacher)', build_model(cfg.model.teacher)),
                 (f'{path} (student)', build_model(cfg.model.student))]
        if twin:
            notes.append(f'{path} is a distiller config: its teacher and '
                         f'student are compared, twin {twin} is ignored.')
    else:
        found = [(path, build_model(cfg.model))]
        if with_twin:
            twin = twin or twin_config_path(path)
            if twin is None:
                notes.append(f'{path} is not under configs/ann/ or '
                             'configs/cnn/; no twin compared (use --twin).')
            elif not osp.isfile(twin):
                notes.append(f'No twin config {twin}; only {path} is '
                             'reported.')
            else:
                found.append((twin, build_model(read_config(twin).model)))
    named = [
        NamedModel('ANN' if is_adder_net(model) else 'CNN', source, model)
        for source, model in found
    ]
    named.sort(key=lambda n: n.label != 'CNN')  # CNN first, stable
    labels = [n.label for n in named]
    if len(set(labels)) < len(labels):  # two CNNs or two ANNs: number them
        named = [n._replace(label=f'{n.label}{i + 1}')
                 for i, n in enumerate(named)]
    return named, notes


def _size_from(transform: dict) -> Optional[int]:
    for key in ('crop_size', 'scale'):
        value = transform.get(key)
        if isinstance(value, int):
            return value
        if isinstance(value, (tuple, list)) and len(value) == 2 and \
                all(isinstance(v, int) for v in value):
            return value[0] if value[0] == value[1] else None
    return None


def default_input_shape(cfg: Config,
                        fallback: Sequence[int] = (3, 32, 32)
                        ) -> Tuple[int, ...]:
    """``(3, S, S)`` from the last crop/resize of the test pipeline.

    Example:
        >>> default_input_shape(Config.fromfile(
        ...     'configs/ann/resnet18_imagenet.py'))
        (3, 224, 224)
    """
    pipeline = cfg.get('test_dataloader', {}).get('dataset', {}).get(
        'pipeline') or cfg.get('test_pipeline') or []
    size = None
    for transform in pipeline:
        size = _size_from(transform) or size
    return (3, size, size) if size else tuple(fallback)
