"""Loading a checkpoint for evaluation: every weight must fit.

MMEngine's runner loads ``load_from`` non-strictly and only logs what did
not fit, so a checkpoint tested with the wrong config is evaluated with
randomly initialised layers and reports a wrong accuracy as if it were
right. :func:`load_strictly` refuses instead, naming the missing and
unexpected keys and the config or tool that fits the checkpoint.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Optional

import torch
import torch.nn as nn

from mmpkkd.utils.errors import INPUT_EXIT, UserError
from .schemes import read_checkpoint
from .student import STUDENT_PREFIX, TEACHER_PREFIX

#: Keys shown per list in a mismatch message.
SHOWN_KEYS = 5


def checkpoint_state_dict(checkpoint: dict) -> Dict[str, torch.Tensor]:
    """The weights of a checkpoint (``state_dict``, or the dict itself),
    without a DDP ``module.`` prefix."""
    state = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state, dict):
        raise UserError('the checkpoint holds no state_dict of weights.',
                        INPUT_EXIT)
    return OrderedDict((re.sub(r'^module\.', '', k), v)
                       for k, v in state.items()
                       if isinstance(v, torch.Tensor))


def trained_as(checkpoint: dict) -> str:
    """``'PKKD'``, ``'ANN'``, ``'CNN'`` or ``''`` from the config text that
    MMEngine stores in a checkpoint's meta."""
    meta = checkpoint.get('meta')
    text = meta.get('cfg') if isinstance(meta, dict) else None
    if not isinstance(text, str):
        return ''
    if 'PKKDDistiller' in text:
        return 'PKKD'
    return 'ANN' if 'Adder2d' in text else 'CNN'


def _is_pkkd(keys) -> bool:
    return any(k.startswith(STUDENT_PREFIX) for k in keys) and any(
        k.startswith(TEACHER_PREFIX) for k in keys)


def mismatch_message(path: str, config: str, missing: List[str],
                     unexpected: List[str], shapes: List[str],
                     checkpoint: dict, model_keys) -> str:
    """What does not fit, and which config or tool fits the checkpoint."""

    def some(keys):
        shown = ', '.join(keys[:SHOWN_KEYS])
        return shown + (f', ... ({len(keys)} in all)'
                        if len(keys) > SHOWN_KEYS else '')

    lines = [f'checkpoint {path} does not fit the model of {config}:']
    if missing:
        lines.append(f'  missing in the checkpoint: {some(missing)}')
    if unexpected:
        lines.append(f'  not in the model: {some(unexpected)}')
    if shapes:
        lines.append(f'  different shapes: {some(shapes)}')
    ckpt_keys = list(checkpoint_state_dict(checkpoint))
    kind = trained_as(checkpoint)
    if _is_pkkd(ckpt_keys) and not _is_pkkd(model_keys):
        lines.append(
            'It is a PKKD checkpoint (student and teacher). Test it with '
            'the PKKD config it was trained with, or save its student with '
            f'`python tools/model_converters/extract_student.py {path} '
            'student.pth` and test that with the matching ANN config.')
    elif _is_pkkd(model_keys) and not _is_pkkd(ckpt_keys):
        lines.append(
            'The config is a PKKD config but the checkpoint holds one '
            f'network{f" (trained as {kind})" if kind else ""}: test it '
            'with the ANN or CNN config it was trained with.')
    elif kind:
        lines.append(f'It was trained with a {kind} config; pass that '
                     'config (configs/ann, configs/cnn or configs/pkkd).')
    else:
        lines.append('Pass the config the checkpoint was trained with.')
    return '\n'.join(lines)


def load_strictly(model: nn.Module,
                  path: str,
                  config: str = 'the config',
                  checkpoint: Optional[dict] = None) -> dict:
    """Load the checkpoint ``path`` into ``model``; every key must match.

    Args:
        model (nn.Module): The model built from ``config`` (unwrapped).
        path (str): The checkpoint (a path or URL), read with the safe
            loader.
        config (str): The config's path, for the message.
        checkpoint (dict, optional): The checkpoint if already loaded.

    Returns:
        dict: The loaded checkpoint.

    Raises:
        UserError: Keys are missing or unexpected, or shapes differ; the
            message names them and the config or tool that fits.
        CheckpointError: The file is missing, corrupt or unsafe.
    """
    if checkpoint is None:
        checkpoint = read_checkpoint(path)
    if not isinstance(checkpoint, dict):
        raise UserError(f'checkpoint {path} is not a dict of weights.',
                        INPUT_EXIT)
    state = checkpoint_state_dict(checkpoint)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f'{k} {tuple(state[k].shape)} vs {tuple(v.shape)}'
        for k, v in own.items() if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        raise UserError(
            mismatch_message(path, config, missing, unexpected, shapes,
                             checkpoint, list(own)), INPUT_EXIT)
    model.load_state_dict(state, strict=True)
    return checkpoint

