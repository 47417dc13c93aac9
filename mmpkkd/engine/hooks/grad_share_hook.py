"""Log each student loss term's share of the gradient during training."""
from typing import Optional

from mmengine.hooks import Hook, LoggerHook
from mmengine.model import is_model_wrapper

from mmpkkd.registry import HOOKS


@HOOKS.register_module()
class GradShareHook(Hook):
    """Ask the distiller to measure its gradient shares every few iterations.

    On the chosen iterations the model's next training loss also returns
    ``student.grad_share.<term>`` (``cls``, ``kd``, ``mid``): each student
    loss term's fraction of the gradient norm on the student's conv/adder
    weights, averaged over layers (see
    :mod:`mmpkkd.models.distillers.grad_share`). They are logged with the
    losses and written to ``scalars.json``. A model without
    ``request_grad_shares`` (a plain classifier) is left alone.

    Cost: one extra backward pass of the student per loss term on a
    measured iteration (about one training iteration for PKKD's three
    terms), none on the others. At the default log interval of 50 that is
    about 2 % of the training time.

    Args:
        interval (int, optional): Measure every ``interval`` training
            iterations, on the iterations the logger logs when it is the
            logger's interval. ``None`` (default): the ``LoggerHook``'s
            interval, but at least ``min_interval``.
        min_interval (int): Lower bound of the interval taken from the
            logger, which small data sets lower to a few iterations.
            Defaults to 50.

    Example:
        >>> custom_hooks = [dict(type='GradShareHook')]
        >>> # log: ... student.grad_share.cls: 0.61 ... .kd: 0.38 ... .mid: 0.01
    """

    priority = 'NORMAL'

    def __init__(self, interval: Optional[int] = None,
                 min_interval: int = 50):
        if interval is not None and interval < 1:
            raise ValueError(f'GradShareHook interval must be >= 1 or None, '
                             f'got {interval}.')
        self.interval = interval
        self.min_interval = min_interval

    def before_train(self, runner) -> None:
        if self.interval is None:
            logger = next(
                (h for h in runner.hooks if isinstance(h, LoggerHook)), None)
            logged = logger.interval if logger is not None else 50
            self.interval = max(logged, self.min_interval)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        request = getattr(model, 'request_grad_shares', None)
        if request is not None and (runner.iter == 0
                                    or self.every_n_train_iters(
                                        runner, self.interval)):
            request()
