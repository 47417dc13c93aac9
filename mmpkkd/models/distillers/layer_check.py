"""Build-time validation of the layers a distiller hooks."""
from typing import Dict, List, Sequence, Tuple, Union

import torch.nn as nn

from mmpkkd.models.layers import Adder2d
from .kernels import GaussianKernel, LaplaceKernel


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
        raise KeyError(
            f'distill_layers: {side} layer {name!r} {what}. Valid '
            f'{side} layer names: {conv_layer_names(model)}')
    return module


def check_layer_pairs(distill_layers: Sequence[Union[str, Dict[str, str]]],
                      student: nn.Module, teacher: nn.Module,
                      student_kernel: nn.Module, teacher_kernel: nn.Module,
                      connector: str) -> List[Tuple[str, str]]:
    """Resolve ``distill_layers`` to (student, teacher) names and check them.

    Raises:
        KeyError: A name is not a conv/adder layer of its network (the
            message lists the valid names).
        TypeError: A layer does not suit the kernel of its side.
        ValueError: Channels differ while ``connector='none'``.
    """
    pairs = []
    for spec in distill_layers:
        if isinstance(spec, str):
            s_name = t_name = spec
        elif isinstance(spec, dict) and set(spec) == {'student', 'teacher'}:
            s_name, t_name = spec['student'], spec['teacher']
        else:
            raise TypeError(
                'each distill_layers entry must be a module name or '
                f"dict(student=..., teacher=...), got {spec!r}.")
        s_mod = _lookup(student, s_name, 'student')
        t_mod = _lookup(teacher, t_name, 'teacher')
        for side, name, kernel, mod in (('student', s_name, student_kernel,
                                         s_mod), ('teacher', t_name,
                                                  teacher_kernel, t_mod)):
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
                "connector='student' to map them with a 1x1 conv.")
        pairs.append((s_name, t_name))
    return pairs
