"""Optimizer wrappers that apply AdderNet's adaptive learning rate.

The rescaling of adder weight gradients (see
:mod:`mmpkkd.models.layers.adaptive_lr`) runs in ``step``, i.e. once per
optimizer step on the final gradient: after DDP's all-reduce (done during
``backward``), after the last of ``accumulative_counts`` micro-batches
(``step`` is only called then) and, for AMP, after ``unscale_``. The
optimizer then adds weight decay and momentum to the rescaled gradient, as
in AdderNet. For a model without adder layers both wrappers behave exactly
like MMEngine's.

The adder weights are looked up from the adder layers at every step. The
wrappers learn the model from ``optim_context(model)``, which MMEngine's
models and model wrappers (DDP, FSDP) enter in ``train_step``: the model
names the layers in messages and gives FSDP's process groups. Used without
``optim_context``, they search all adder layers of the process, which is
enough for everything but FSDP's sharded weights.
"""
import weakref
from contextlib import contextmanager
from typing import Optional

import torch.nn as nn
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from mmpkkd.models.layers import rescale_adder_grads
from mmpkkd.registry import OPTIM_WRAPPERS


class _AdaptiveLRMixin:
    """Remembers the model of ``optim_context`` and rescales the adder
    gradients of the wrapped optimizer's parameters."""

    _model_ref: Optional[weakref.ref] = None

    @contextmanager
    def optim_context(self, model: nn.Module):
        self._model_ref = weakref.ref(model)
        with super().optim_context(model):
            yield

    def rescale_adder_grads(self) -> int:
        """Apply the adaptive lr to the optimizer's adder gradients."""
        model = self._model_ref() if self._model_ref is not None else None
        params = [param for group in self.optimizer.param_groups
                  for param in group['params']]
        return rescale_adder_grads(params, model=model)


@OPTIM_WRAPPERS.register_module()
class AdderOptimWrapper(_AdaptiveLRMixin, OptimWrapper):
    """:class:`~mmengine.optim.OptimWrapper` with AdderNet's adaptive lr.

    Same arguments as ``OptimWrapper``. Gradient clipping, when configured
    (``clip_grad=dict(max_norm=...)``), acts on the rescaled gradients.

    Example:
        >>> optim_wrapper = dict(
        ...     type='AdderOptimWrapper',
        ...     optimizer=dict(type='SGD', lr=0.1, momentum=0.9))
        >>> # runner / model.train_step(data, optim_wrapper) as usual
    """

    def step(self, **kwargs) -> None:
        self.rescale_adder_grads()
        super().step(**kwargs)


@OPTIM_WRAPPERS.register_module()
class AmpAdderOptimWrapper(_AdaptiveLRMixin, AmpOptimWrapper):
    """:class:`~mmengine.optim.AmpOptimWrapper` with AdderNet's adaptive lr.

    The gradients are unscaled first, so any loss scale (a fixed one, or
    float16's dynamic scale) leaves the adder update unchanged. Steps with
    non-finite gradients are skipped by the loss scaler as usual.

    Example:
        >>> optim_wrapper = dict(
        ...     type='AmpAdderOptimWrapper', dtype='float16',
        ...     loss_scale='dynamic',
        ...     optimizer=dict(type='SGD', lr=0.1, momentum=0.9))
    """

    def step(self, **kwargs) -> None:
        # MMEngine's AmpOptimWrapper.step, with the rescaling placed between
        # unscaling and the (optional) clipping; the scaler remembers that
        # this optimizer is unscaled, so step() does not divide again
        self.loss_scaler.unscale_(self.optimizer)
        self.rescale_adder_grads()
        if self.clip_grad_kwargs:
            self._clip_grad()
        self.loss_scaler.step(self.optimizer, **kwargs)
        self.loss_scaler.update(self._scale_update_param)
