"""Optimizer wrappers that apply AdderNet's adaptive learning rate.

The rescaling of adder weight gradients (see
:mod:`mmpkkd.models.layers.adaptive_lr`) runs in ``step``, i.e. once per
optimizer step on the final gradient: after DDP's all-reduce (done during
``backward``), after the last of ``accumulative_counts`` micro-batches
(``step`` is only called then) and, for AMP, after ``unscale_``. The
optimizer then adds weight decay and momentum to the rescaled gradient, as
in AdderNet. For a model without adder layers both wrappers behave exactly
like MMEngine's.
"""
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from mmpkkd.models.layers import rescale_adder_grads
from mmpkkd.registry import OPTIM_WRAPPERS


def _optimizer_params(optim_wrapper: OptimWrapper):
    return (param for group in optim_wrapper.optimizer.param_groups
            for param in group['params'])


@OPTIM_WRAPPERS.register_module()
class AdderOptimWrapper(OptimWrapper):
    """:class:`~mmengine.optim.OptimWrapper` with AdderNet's adaptive lr.

    Same arguments as ``OptimWrapper``. Gradient clipping, when configured,
    acts on the rescaled gradients.

    Example:
        >>> optim_wrapper = dict(
        ...     type='AdderOptimWrapper',
        ...     optimizer=dict(type='SGD', lr=0.1, momentum=0.9))
        >>> # runner / model.train_step(data, optim_wrapper) as usual
    """

    def step(self, **kwargs) -> None:
        rescale_adder_grads(_optimizer_params(self))
        super().step(**kwargs)


@OPTIM_WRAPPERS.register_module()
class AmpAdderOptimWrapper(AmpOptimWrapper):
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
        rescale_adder_grads(_optimizer_params(self))
        if self.clip_grad_kwargs:
            self._clip_grad()
        self.loss_scaler.step(self.optimizer, **kwargs)
        self.loss_scaler.update(self._scale_update_param)
