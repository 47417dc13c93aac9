"""Warn when a kernel's values underflow to 0 and ``L_mid`` goes silent."""
import warnings
from typing import Sequence, Set, Tuple

import torch
import torch.nn as nn


class KernelUnderflowWarning(UserWarning):
    """Most kernel values of a distilled layer are exactly 0."""


class UnderflowMonitor:
    """Checks kernel maps and warns once per (side, layer) on underflow.

    ``exp(-d / sigma)`` is exactly 0 in float32 once ``d / sigma`` exceeds
    about 103.97. Where most values of a layer are 0, the kernel (and so
    ``L_mid``) gives that layer almost no gradient. A fixed sigma far below
    the layer's distances does this (adder L1 distances are in the hundreds).

    Args:
        threshold (float): Fraction of exact zeros above which to warn.
            Defaults to 0.5.

    Example:
        >>> monitor = UnderflowMonitor()
        >>> monitor.check('student', ['layer1'], [torch.zeros(2, 4)],
        ...               [LaplaceKernel(sigma=1.0)])  # warns once
    """

    def __init__(self, threshold: float = 0.5):
        self.threshold = threshold
        self.warned: Set[Tuple[str, str]] = set()

    def check(self, side: str, names: Sequence[str],
              maps: Sequence[torch.Tensor],
              kernels: Sequence[nn.Module]) -> None:
        """Warn for every layer of ``side`` whose map is mostly zeros.

        Args:
            side (str): ``'student'`` or ``'teacher'``.
            names (Sequence[str]): Layer names, one per map.
            maps (Sequence[torch.Tensor]): Kernel values of each layer.
            kernels (Sequence[nn.Module]): Each layer's kernel; its repr
                (which shows sigma) goes into the message.
        """
        todo = [i for i, name in enumerate(names)
                if (side, name) not in self.warned]
        if not todo:
            return
        with torch.no_grad():  # one device sync for all layers
            fractions = torch.stack([
                (maps[i] == 0).float().mean() for i in todo]).tolist()
        for i, fraction in zip(todo, fractions):
            if fraction > self.threshold:
                self.warned.add((side, names[i]))
                warnings.warn(
                    f'{fraction:.0%} of the {side} kernel values of layer '
                    f'{names[i]!r} underflow to exactly 0 ({kernels[i]}): '
                    'L_mid gives this layer almost no gradient. Use '
                    "sigma='auto', or a larger sigma for this layer (a list "
                    f'gives one value per distilled layer in {side}_kernel).',
                    KernelUnderflowWarning,
                    stacklevel=2)
