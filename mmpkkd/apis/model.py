"""Get a model from a config (and a checkpoint): the one way to build one.

Like :func:`mmpretrain.apis.get_model`, but built in the ``mmpkkd`` scope
(mmpretrain's builds in ``'mmpretrain'``, where the adder layers,
distillers and heads of this project are unknown), with every weight of
the checkpoint checked (:func:`mmpkkd.engine.checkpoint.load_strictly`: a
mismatch names the keys and the config or tool that fits), checkpoints
read by the weights-only loader whether named by path or URL
(:func:`mmpkkd.engine.checkpoint.read_checkpoint`), and int8 files of
``tools/deployment/quantize_int8.py`` accepted too.
"""
import copy
import os
from typing import Optional, Union

import torch
import torch.nn as nn
from mmengine.config import Config

from mmpkkd.engine.checkpoint import (STUDENT_PREFIX, extract_student,
                                     load_strictly, read_checkpoint)
from mmpkkd.models import build_model
from mmpkkd.quantization import (check_int8_dict, check_matches_config,
                                 is_int8_dict, is_safetensors_file, load_int8,
                                 read_int8)
from mmpkkd.utils import check_cfg_options, read_config

ConfigType = Union[str, os.PathLike, Config]


def is_distiller_cfg(model_cfg: dict) -> bool:
    """Whether a ``model`` config is a distiller (``teacher`` and
    ``student``), such as ``PKKDDistiller``."""
    return 'teacher' in model_cfg and 'student' in model_cfg


def _as_config(config: ConfigType,
               cfg_options: Optional[dict] = None) -> Config:
    """``config`` read (a path) or copied (a Config), overrides applied."""
    if isinstance(config, Config):
        cfg = copy.deepcopy(config)
        if cfg_options:
            check_cfg_options(cfg, cfg_options, cfg.filename or 'given')
            cfg.merge_from_dict(cfg_options)
        return cfg
    if isinstance(config, (str, os.PathLike)):
        return read_config(os.fspath(config), cfg_options)
    raise TypeError('config must be a config file path or an '
                    f'mmengine.config.Config, got {type(config).__name__}')


def get_model_cfg(config: ConfigType,
                  *,
                  student: bool = False,
                  cfg_options: Optional[dict] = None) -> dict:
    """The ``model`` config that :func:`get_model` builds, as a plain dict.

    The config's top-level ``data_preprocessor`` is set on the model (as
    MMEngine's runner does), also on the student of a distiller.

    Args:
        config (str | Config): A config file or a loaded config.
        student (bool): For a distiller config, the config of its student
            instead of the distiller. No effect on other configs.
        cfg_options (dict, optional): ``--cfg-options``-style overrides;
            a key the config does not have is refused.

    Returns:
        dict: The model config.

    Example:
        >>> cfg = get_model_cfg(
        ...     'configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py',
        ...     student=True)
        >>> cfg['type'], cfg['backbone']['conv_cfg']['type']
        ('ImageClassifier', 'Adder2d')
    """
    cfg = _as_config(config, cfg_options)
    model = cfg.model.to_dict() if hasattr(cfg.model, 'to_dict') else \
        copy.deepcopy(dict(cfg.model))
    preprocessor = model.get('data_preprocessor') or cfg.get(
        'data_preprocessor')
    if student and is_distiller_cfg(model):
        model = copy.deepcopy(dict(model['student']))
    if preprocessor is not None:
        preprocessor = preprocessor.to_dict() if hasattr(
            preprocessor, 'to_dict') else dict(preprocessor)
        model.setdefault('data_preprocessor', preprocessor)
    return model


def _weights_for(model_cfg: dict, checkpoint: dict, student: bool) -> dict:
    """The checkpoint to load: the student's weights of a distiller
    checkpoint when a classifier is built with ``student=True``."""
    state = checkpoint.get('state_dict', checkpoint)
    if (student and not is_distiller_cfg(model_cfg)
            and isinstance(state, dict)
            and any(str(k).startswith(STUDENT_PREFIX) for k in state)):
        return extract_student(checkpoint)
    return checkpoint


def get_model(config: ConfigType,
              checkpoint: Optional[str] = None,
              *,
              student: bool = False,
              cfg_options: Optional[dict] = None,
              device: Union[str, torch.device] = 'cpu') -> nn.Module:
    """Build the model of a config, load a checkpoint strictly, eval mode.

    Args:
        config (str | Config): A config file or a loaded config (its
            ``filename`` names it in messages).
        checkpoint (str, optional): Weights to load:

            * a checkpoint of ``tools/train.py`` (or any file with a
              ``state_dict``); every weight must fit the model. A URL or
              another scheme MMEngine knows (``torchvision://...``) is
              downloaded into torch.hub's cache and read weights-only
              like a local file;
            * with ``student=True``, a PKKD checkpoint gives its student's
              weights (the ``student.*`` keys);
            * an int8 file of ``tools/deployment/quantize_int8.py``: the
              int8 classifier, built from ``config`` (a PKKD config stands
              for its student), whose model the file's must match. The
              model stored in the file is compared as data, never built.

            None leaves the weights as the model initialises them.
        student (bool): For a distiller config (PKKD), build its student
            classifier alone instead of the distiller.
        cfg_options (dict, optional): Overrides of config entries
            (``{'model.backbone.depth': 32}``); a key the config does not
            have is refused.
        device (str | torch.device): Where to put the model. Int8 models
            run on the CPU only.

    Returns:
        nn.Module: The model in eval mode; call it as
        ``model(inputs, mode='tensor')`` for logits, or wrap it in
        :class:`~mmpkkd.apis.TensorModeWrapper` to trace or export it.

    Raises:
        UserError: The config is missing or broken, an override names a
            key it does not have, or the checkpoint does not fit (the
            message names the keys and what fits).
        CheckpointError: The checkpoint is missing, unsafe or corrupt.
        Int8FileError: An int8 file is refused (see
            :mod:`mmpkkd.quantization.serialization`).

    Example:
        >>> model = get_model('configs/ann/ann_resnet20_1xb64-15e_digits.py')
        >>> model(torch.randn(2, 3, 32, 32), mode='tensor').shape
        torch.Size([2, 10])
        >>> student = get_model(
        ...     'configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py',
        ...     'work_dirs/pkkd_resnet20_1xb64-15e_digits/epoch_15.pth',
        ...     student=True)  # the ANN, with the student.* weights
    """
    cfg = _as_config(config, cfg_options)
    name = cfg.filename or 'the config'
    if checkpoint is not None and is_safetensors_file(checkpoint):
        # int8 format 3; read and checked without any pickle
        return _int8_model(cfg, read_int8(checkpoint), checkpoint, device)
    loaded = read_checkpoint(checkpoint) if checkpoint is not None else None
    if loaded is not None and is_int8_dict(loaded):  # int8 format 2
        check_int8_dict(loaded, checkpoint)
        return _int8_model(cfg, loaded, checkpoint, device)
    model_cfg = get_model_cfg(cfg, student=student)
    model = build_model(model_cfg)
    if loaded is not None:
        load_strictly(model, checkpoint, name,
                      _weights_for(model_cfg, loaded, student))
    return model.to(device).eval()


def _int8_model(cfg: Config, data: dict, path: str,
                device: Union[str, torch.device]) -> nn.Module:
    """The int8 classifier of ``cfg`` with the checked int8 file's
    weights."""
    if torch.device(device).type != 'cpu':
        raise ValueError(f'{path} is an int8 model, which runs on the CPU '
                         "only; pass device='cpu'.")
    model_cfg = check_matches_config(data, get_model_cfg(cfg, student=True),
                                     path)
    return load_int8(data, model=build_model(model_cfg))
