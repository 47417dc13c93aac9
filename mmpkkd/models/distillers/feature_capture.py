"""Capture a layer's input, weight and output during a normal forward."""
from contextlib import contextmanager
from typing import Dict, Iterator, List, NamedTuple

import torch
import torch.nn as nn


class LayerRecord(NamedTuple):
    """What one distilled layer saw in the current forward pass."""
    module: nn.Module  # gives the weight and the conv geometry
    input: torch.Tensor
    output: torch.Tensor


class FeatureCapture:
    """Forward hooks on named sub-modules that record ``LayerRecord``s.

    Hooks exist only inside :meth:`recording`: they are registered on entry
    and removed on exit (also on error), so nothing is recorded during
    evaluation or leaks from one iteration into the next.

    Args:
        model (nn.Module): The network whose layers are captured.
        names (list[str]): Dotted module names, e.g.
            ``'backbone.layer1.2.conv2'``; validated by the caller.

    Example:
        >>> cap = FeatureCapture(net, ['backbone.layer1.0.conv1'])
        >>> with cap.recording() as records:
        ...     logits = net(x, mode='tensor')
        >>> records['backbone.layer1.0.conv1'].output.shape
        torch.Size([2, 16, 32, 32])
    """

    def __init__(self, model: nn.Module, names: List[str]):
        modules = dict(model.named_modules())
        self.modules = {name: modules[name] for name in names}

    @contextmanager
    def recording(self) -> Iterator[Dict[str, LayerRecord]]:
        records: Dict[str, LayerRecord] = {}
        handles = []

        def make_hook(name: str):

            def hook(module: nn.Module, args, output: torch.Tensor) -> None:
                records[name] = LayerRecord(module, args[0], output)

            return hook

        try:
            for name, module in self.modules.items():
                handles.append(module.register_forward_hook(make_hook(name)))
            yield records
        finally:
            for handle in handles:
                handle.remove()
