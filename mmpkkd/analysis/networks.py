"""The networks an operation count compares: a config's CNN and ANN.

A distiller config gives its teacher (CNN) and student (ANN); an adder
classifier config gives itself and its CNN twin, derived from its own model
config (:func:`cnn_twin_cfg`); every network comes from
:func:`mmpkkd.apis.get_model`.
"""
import copy
import os.path as osp
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.config import Config

from mmpkkd.apis import get_model, is_distiller_cfg
from mmpkkd.models.layers import Adder2d
from mmpkkd.utils import read_config

#: AdderNet's classifier (BN on the logits) and the plain CNN head that
#: takes its place in the CNN twin, as in the PKKD teacher and configs/cnn/.
TWIN_HEADS = {'BNLinearClsHead': 'LinearClsHead'}


class NamedModel(NamedTuple):
    """A network to analyse: label (``'CNN'``/``'ANN'``), origin, module."""
    label: str
    source: str
    model: nn.Module


def is_adder_net(model: nn.Module) -> bool:
    """True if any layer of ``model`` is an :class:`Adder2d`."""
    return any(isinstance(m, Adder2d) for m in model.modules())


def _is_adder_cfg(cfg: Any) -> bool:
    return isinstance(cfg, dict) and cfg.get('type') in ('Adder2d',
                                                         'mmpkkd.Adder2d')


def _to_cnn(cfg: Any) -> Tuple[Any, bool]:
    """``cfg`` with every adder ``*conv_cfg`` set to None; whether any was."""
    if isinstance(cfg, (list, tuple)):
        items = [_to_cnn(v) for v in cfg]
        return type(cfg)(v for v, _ in items), any(f for _, f in items)
    if not isinstance(cfg, dict):
        return cfg, False
    out, found = {}, False
    for key, value in cfg.items():
        if key.endswith('conv_cfg') and _is_adder_cfg(value):
            out[key], found = None, True
        else:
            out[key], sub = _to_cnn(value)
            found = found or sub
    return out, found


def cnn_twin_cfg(model_cfg: dict) -> Optional[dict]:
    """The CNN twin of an adder classifier config, derived from the config.

    Every ``conv_cfg`` (and ``stem_conv_cfg``, ...) of type ``Adder2d``
    becomes ``None``, i.e. a ``Conv2d`` of the same shape, and AdderNet's
    ``BNLinearClsHead`` becomes a plain ``LinearClsHead``: the network the
    PKKD configs use as teacher and ``configs/cnn/`` trains alone.

    Args:
        model_cfg (dict): A classifier's ``model`` config.

    Returns:
        dict | None: The twin's ``model`` config, or None when the config
        builds no adder layer (a CNN: which convs its ANN would turn into
        adder layers is a choice of the ANN config, not derivable).

    Example:
        >>> cfg = Config.fromfile(
        ...     'configs/ann/ann_resnet20_1xb256-400e_cifar10.py')
        >>> twin = cnn_twin_cfg(cfg.model)
        >>> twin['backbone']['conv_cfg'], twin['head']['type']
        (None, 'LinearClsHead')
    """
    twin, found = _to_cnn(copy.deepcopy(dict(model_cfg)))
    if not found:
        return None
    head = twin.get('head')
    if isinstance(head, dict) and head.get('type') in TWIN_HEADS:
        head['type'] = TWIN_HEADS[head['type']]
    return twin


def networks_to_compare(path: str,
                        twin: Optional[str] = None,
                        with_twin: bool = True,
                        cfg_options: Optional[dict] = None
                        ) -> Tuple[List[NamedModel], List[str]]:
    """The CNN and the ANN to report for a config, CNN first.

    * distiller config (``configs/pkkd/``): its teacher and its student;
    * adder classifier config (``configs/ann/``): that network and its CNN
      twin, built from the same model config by :func:`cnn_twin_cfg`;
    * CNN config: that network alone, unless ``twin`` names another config.

    Args:
        path (str): Config file.
        twin (str, optional): Config of the network to compare with,
            instead of the CNN twin derived from ``path``.
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
        distiller = get_model(cfg)
        found = [(f'{path} (teacher)', distiller.teacher),
                 (f'{path} (student)', distiller.student)]
        if twin:
            notes.append(f'{path} is a distiller config: its teacher and '
                         f'student are compared, twin {twin} is ignored.')
    else:
        found = [(path, get_model(cfg))]
        if with_twin and twin:
            if not osp.isfile(twin):
                notes.append(f'No twin config {twin}; only {path} is '
                             'reported.')
            else:
                found.append((twin, get_model(twin)))
        elif with_twin:
            derived = cnn_twin_cfg(cfg.model)
            if derived is None:
                notes.append(f'{path} builds no adder layer; pass --twin '
                             'with an ANN config to compare it with one.')
            else:
                twin_cfg = copy.deepcopy(cfg)
                twin_cfg.model = derived
                found.append((f'CNN twin of {path} (adder layers as '
                              'convs, linear head)', get_model(twin_cfg)))
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
        ...     'configs/ann/ann_resnet18_8xb32-150e_in1k.py'))
        (3, 224, 224)
    """
    pipeline = cfg.get('test_dataloader', {}).get('dataset', {}).get(
        'pipeline') or cfg.get('test_pipeline') or []
    size = None
    for transform in pipeline:
        size = _size_from(transform) or size
    return (3, size, size) if size else tuple(fallback)
