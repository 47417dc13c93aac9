"""Build-time validation of the layers a distiller hooks."""
from typing import Dict, List, Sequence, Tuple, Union

import torch.nn as nn

from mmpkkd.models.layers import Adder2d
from mmpkkd.utils.errors import USAGE_EXIT, UserError
from .kernels import GaussianKernel, LaplaceKernel

LayerSpec = Union[str, Dict[str, str]]


class LayerNameError(UserError, KeyError):
    """A ``distill_layers`` name that is not a conv/adder layer (a
    ``KeyError`` that the tools report as one line, exit status 2)."""

    def __init__(self, message: str, exit_code: int = USAGE_EXIT):
        super().__init__(message, exit_code)


def conv_layer_names(model: nn.Module) -> List[str]:
    """Names of the conv-like (Conv2d / Adder2d) layers of ``model``."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def _kernel_mismatch(kernel: nn.Module, module: nn.Module) -> str:
    if isinstance(kernel, LaplaceKernel) and not isinstance(module, Adder2d):
        return 'LaplaceKernel needs an Adder2d layer (ANN side)'
    if isinstance(kernel, GaussianKernel) and isinstance(module, Adder2d):
        return 'GaussianKernel needs a multiplicative conv (CNN side)'
    return ''


def _lookup(model: nn.Module, name: str, side: str) -> nn.Module:
    modules = dict(model.named_modules())
    module = modules.get(name)
    if not isinstance(module, nn.Conv2d):
        what = 'is not a conv/adder layer' if module is not None else \
            'does not exist'
        raise LayerNameError(
            f'distill_layers: {side} layer {name!r} {what}. Valid '
            f'{side} layer names: {conv_layer_names(model)}')
    return module


def _one_sided(name: str, student: nn.Module, teacher: nn.Module) -> None:
    """Refuse a plain name (used for both networks) that is a conv layer
    of only one of them, saying which and how to pair layers instead."""
    s_names, t_names = conv_layer_names(student), conv_layer_names(teacher)
    if (name in s_names) == (name in t_names):
        return
    has, lacks, names = (('teacher', 'student', s_names)
                         if name in t_names else
                         ('student', 'teacher', t_names))
    raise LayerNameError(
        f'distill_layers: {name!r} is a layer of the {has} but not of the '
        f'{lacks} (a plain name must exist in both networks). Pair two '
        f"layers with dict(student='...', teacher='...'), or use a name of "
        f'both. Valid {lacks} layer names: {names}')


def resolve_layer_pairs(distill_layers: Sequence[LayerSpec],
                        student: nn.Module,
                        teacher: nn.Module) -> List[Tuple[str, str]]:
    """Resolve ``distill_layers`` to (student, teacher) layer names.

    Raises:
        TypeError: An entry is neither a name nor ``dict(student=...,
            teacher=...)``.
        KeyError: A name is not a conv/adder layer of its network, or a
            plain name exists in one network only (the message lists the
            valid names).
    """
    pairs = []
    for spec in distill_layers:
        if isinstance(spec, str):
            _one_sided(spec, student, teacher)
            s_name = t_name = spec
        elif isinstance(spec, dict) and set(spec) == {'student', 'teacher'}:
            s_name, t_name = spec['student'], spec['teacher']
        else:
            raise TypeError(
                'each distill_layers entry must be a module name or '
                f"dict(student=..., teacher=...), got {spec!r}.")
        _lookup(student, s_name, 'student')
        _lookup(teacher, t_name, 'teacher')
        pairs.append((s_name, t_name))
    return pairs


def check_layer_pairs(pairs: Sequence[Tuple[str, str]], student: nn.Module,
                      teacher: nn.Module, student_kernels: Sequence[nn.Module],
                      teacher_kernels: Sequence[nn.Module],
                      connector: str) -> None:
    """Check that each layer suits its kernel and the channels can meet.

    Raises:
        TypeError: A layer does not suit the kernel of its side.
        ValueError: Channels differ while ``connector='none'``.
    """
    s_modules = dict(student.named_modules())
    t_modules = dict(teacher.named_modules())
    for (s_name, t_name), s_kernel, t_kernel in zip(
            pairs, student_kernels, teacher_kernels):
        s_mod, t_mod = s_modules[s_name], t_modules[t_name]
        for side, name, kernel, mod in (('student', s_name, s_kernel, s_mod),
                                        ('teacher', t_name, t_kernel, t_mod)):
            problem = _kernel_mismatch(kernel, mod)
            if problem:
                raise TypeError(
                    f'distill_layers: {side} layer {name!r} is a '
                    f'{type(mod).__name__} but {problem}. Pick another layer '
                    'or change the kernel.')
        if connector == 'none' and s_mod.out_channels != t_mod.out_channels:
            raise ValueError(
                f'distill_layers: student {s_name!r} has {s_mod.out_channels}'
                f' channels but teacher {t_name!r} has {t_mod.out_channels};'
                " with connector='none' they must match. Use "
                "connector='student' (or 'teacher') to map them with a 1x1 "
                'conv.')
