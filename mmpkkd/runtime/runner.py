"""The MMEngine runner as the tools build it: quiet and with progress.

* :class:`KnownNoiseFilter` drops MMEngine's deprecation notices about its
  own ``FileClient`` (its checkpoint hook creates one on every run, with no
  way to turn it off from a config) and, without CUDA, reports
  ``GPU number: N`` as what it is: ``processes: N (CPU)``.
* :func:`adapt_log_interval` lowers the logger's interval so that every
  epoch logs about :data:`LINES_PER_EPOCH` lines: with the default interval
  of 50, a 22-iteration epoch would log nothing.
"""
import logging
import re
from typing import Optional

import torch
from mmengine.hooks import LoggerHook
from mmengine.logging import MMLogger
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

#: Training log lines wanted per epoch when the epoch is short.
LINES_PER_EPOCH = 10

#: Log messages of MMEngine that warn about its own internals.
NOISE_PREFIXES = (
    '"FileClient" will be deprecated in future',
    '"HardDiskBackend" is the alias of "LocalBackend"',
)


class KnownNoiseFilter(logging.Filter):
    """Drop MMEngine's internal deprecation notices; name CPU processes as
    such in the environment report."""

    def __init__(self, cuda: Optional[bool] = None):
        super().__init__()
        if cuda is None:
            cuda = torch.cuda.is_available()
        self.cuda = cuda

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        if not isinstance(msg, str):
            return True
        if msg.startswith(NOISE_PREFIXES):
            return False
        if not self.cuda and 'GPU number: ' in msg:
            record.msg = re.sub(r'GPU number: (\d+)', r'processes: \1 (CPU)',
                                msg)
        return True


class ToolRunner(Runner):
    """MMEngine's ``Runner`` with :class:`KnownNoiseFilter` on its logger."""

    def build_logger(self, *args, **kwargs) -> MMLogger:
        logger = super().build_logger(*args, **kwargs)
        if not any(isinstance(f, KnownNoiseFilter) for f in logger.filters):
            logger.addFilter(KnownNoiseFilter())
        return logger


def build_runner(cfg) -> Runner:
    """``Runner.from_cfg(cfg)`` with the noise filter; a config's own
    ``runner_type`` is built from the registry as MMEngine's tools do."""
    if cfg.get('runner_type') is not None:
        runner = RUNNERS.build(cfg)
        runner.logger.addFilter(KnownNoiseFilter())
        return runner
    return ToolRunner.from_cfg(cfg)


def adapt_log_interval(runner, lines: int = LINES_PER_EPOCH) -> int:
    """Lower the ``LoggerHook`` interval to about ``lines`` per epoch.

    Builds the training loop (as ``runner.train()`` does first) to learn
    the epoch length. The interval is never raised.

    Returns:
        int: The interval in use (0 when there is no logger hook).
    """
    hook = next((h for h in runner.hooks if isinstance(h, LoggerHook)), None)
    if hook is None:
        return 0
    loop = runner.train_loop
    try:
        iters = len(loop.dataloader)
    except TypeError:  # a data loader without a length
        return hook.interval
    interval = max(1, min(hook.interval, iters // lines))
    if interval != hook.interval:
        runner.logger.info(
            f'Log interval {interval} iterations (config: {hook.interval}) '
            f'so that each {iters}-iteration epoch logs about '
            f'{iters // interval} lines.')
        hook.interval = interval
    return interval
