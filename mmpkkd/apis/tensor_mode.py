"""A model as a plain ``forward(inputs)`` for tracing, compiling, export."""
import inspect

import torch
import torch.nn as nn


class TensorModeWrapper(nn.Module):
    """Calls ``model(inputs, mode='tensor')``: image batch in, logits out.

    MMEngine models take ``mode`` and data samples; tracers
    (:func:`torch.onnx.export`, :func:`torch.export.export`,
    :class:`mmengine.analysis.FlopAnalyzer`) and ``torch.compile`` want a
    module whose ``forward`` takes the tensor alone. The data preprocessor
    is not run: ``inputs`` are the preprocessed (normalised) batch. A
    module without a ``mode`` argument is called as ``model(inputs)``.

    The wrapped model is the child ``model``, so its parameters and
    submodules are named ``model.<name>`` here.

    Args:
        model (nn.Module): The network, e.g. from
            :func:`~mmpkkd.apis.get_model`.

    Example:
        >>> net = TensorModeWrapper(get_model(
        ...     'configs/ann/ann_resnet20_1xb64-15e_digits.py'))
        >>> net(torch.randn(4, 3, 32, 32)).shape  # (N, C, H, W) -> (N, K)
        torch.Size([4, 10])
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self._takes_mode = 'mode' in inspect.signature(
            model.forward).parameters

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self._takes_mode:
            return self.model(inputs, mode='tensor')
        return self.model(inputs)
