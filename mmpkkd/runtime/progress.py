"""A job of several trainings, shown as one console line per training.

MMEngine's runner logs its environment, the whole config and a line every
``interval`` iterations, to the console and to the work dir's log file. A
job that trains many models (the main job, ``tools/run_demo.py``) would
print all of that for every training. Here:

* :class:`QuietToolRunner` sends MMEngine's console output to the log file
  only: the console keeps warnings and errors, the file keeps everything;
* :class:`ProgressLineHook` shows each training as one line (epoch, loss,
  then the test accuracy) with the job's estimated time left, from a
  :class:`JobClock` shared by the trainings.

On a terminal the line is rewritten in place after every epoch; elsewhere
(a pipe, a log file) it is written once, when the training is tested.

Example:
    >>> clock = JobClock([('ann', 15), ('pkkd', 15)])
    >>> clock.update(0, epochs_done=5, seconds=50.0)  # 10 s per ANN epoch
    >>> clock.seconds_left(0, epochs_done=5)  # 10 ANN + 15 PKKD epochs
    250.0
"""
import logging
import sys
import time
from contextlib import contextmanager
from functools import partial
from typing import Dict, Iterator, List, Optional, Sequence, TextIO, Tuple

from mmengine.hooks import Hook
from mmengine.logging import MMLogger

from .runner import ToolRunner


def quiet_console(logger: logging.Logger,
                  level: int = logging.WARNING) -> logging.Logger:
    """Raise the level of ``logger``'s console handlers to ``level``.

    File handlers keep their level, so the log file still gets every
    message.
    """
    for handler in logger.handlers:
        if (isinstance(handler, logging.StreamHandler)
                and not isinstance(handler, logging.FileHandler)):
            handler.setLevel(max(handler.level, level))
    return logger


class _NullFile:
    """A text file that drops what is written to it."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


@contextmanager
def silent_precise_bn_bar() -> Iterator[None]:
    """Hide the progress bar that mmpretrain's ``PreciseBNHook`` draws on
    the console after every epoch (an ``mmengine.utils.ProgressBar``, which
    always writes to the ``sys.stdout`` of import time) while the block
    runs."""
    from mmpretrain.engine.hooks import precise_bn_hook
    bar = precise_bn_hook.ProgressBar
    precise_bn_hook.ProgressBar = partial(bar, file=_NullFile())
    try:
        yield
    finally:
        precise_bn_hook.ProgressBar = bar


class QuietToolRunner(ToolRunner):
    """:class:`~mmpkkd.runtime.runner.ToolRunner` whose console shows only
    warnings and errors; its log file (``<work_dir>/<timestamp>/
    <timestamp>.log``) keeps the environment, the config and every log
    line. PreciseBN's progress bar is not drawn."""

    def build_logger(self, *args, **kwargs) -> MMLogger:
        return quiet_console(super().build_logger(*args, **kwargs))

    def train(self):
        with silent_precise_bn_bar():
            return super().train()


def format_seconds(seconds: float) -> str:
    """``'42 s'``, ``'3.5 min'`` or ``'1.2 h'``."""
    if seconds < 60:
        return f'{seconds:.0f} s'
    if seconds < 3600:
        return f'{seconds / 60:.1f} min'
    return f'{seconds / 3600:.1f} h'


class JobClock:
    """Time left in a job of several trainings, from measured epoch times.

    Each training has a kind (trainings of one kind cost about the same per
    epoch) and a number of epochs. The time left is the current training's
    remaining epochs at its own measured rate, plus every later training's
    epochs at the last measured rate of its kind (the current rate where
    that kind has not run yet). Evaluation time is not counted.

    Args:
        runs (Sequence[tuple[str, int]]): ``(kind, epochs)`` of every
            training, in the order they run.
    """

    def __init__(self, runs: Sequence[Tuple[str, int]]):
        self.runs: List[Tuple[str, int]] = list(runs)
        self.rate: Dict[str, float] = {}  # seconds per epoch, per kind

    def update(self, index: int, epochs_done: int, seconds: float) -> None:
        """Record that training ``index`` took ``seconds`` for its first
        ``epochs_done`` epochs."""
        if epochs_done > 0:
            self.rate[self.runs[index][0]] = seconds / epochs_done

    def seconds_left(self, index: int, epochs_done: int) -> Optional[float]:
        """Estimated seconds until the last training ends (None before the
        first epoch of any training has ended)."""
        kind, epochs = self.runs[index]
        rate = self.rate.get(kind)
        if rate is None:
            return None
        left = max(epochs - epochs_done, 0) * rate
        for later_kind, later_epochs in self.runs[index + 1:]:
            left += later_epochs * self.rate.get(later_kind, rate)
        return left


class ProgressLineHook(Hook):
    """One console line for one training of a job.

    While training: ``[2/6] PKKD seed 0: epoch 7/15, loss 0.213, job ETA
    4.1 min`` (on a terminal only, rewritten in place). After testing:
    ``[2/6] PKKD seed 0: 15 epochs in 1.8 min, test top-1 99.11 %
    (teacher 98.00 %)``, which ends the line.

    Args:
        label (str): What trains, e.g. ``'PKKD seed 0'``.
        index (int): The training's position in ``clock.runs``.
        clock (JobClock): The job's clock, shared by its trainings.
        stream (TextIO, optional): Where the line goes. Defaults to
            ``sys.stdout`` at the time of writing.
    """

    priority = 'VERY_LOW'

    def __init__(self, label: str, index: int, clock: JobClock,
                 stream: Optional[TextIO] = None):
        self.label = label
        self.index = index
        self.clock = clock
        self._stream = stream
        self._start: Optional[float] = None
        self._seconds = 0.0
        self._epochs = 0
        self._width = 0  # of the line on screen, to blank it out

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    def _prefix(self) -> str:
        return f'[{self.index + 1}/{len(self.clock.runs)}] {self.label}'

    def _write(self, text: str, final: bool) -> None:
        stream = self.stream
        if stream.isatty():
            stream.write('\r' + text.ljust(self._width))
            self._width = len(text)
            if final:
                stream.write('\n')
        elif final:
            stream.write(text + '\n')
        stream.flush()

    def before_train(self, runner) -> None:
        self._start = time.monotonic()

    def after_train_epoch(self, runner) -> None:
        self._epochs = runner.epoch + 1  # the loop counts it up afterwards
        self._seconds = time.monotonic() - self._start
        self.clock.update(self.index, self._epochs, self._seconds)
        parts = [f'epoch {self._epochs}/{runner.max_epochs}']
        try:
            loss = runner.message_hub.get_scalar('train/loss').current()
            parts.append(f'loss {loss:.3f}')
        except KeyError:
            pass
        left = self.clock.seconds_left(self.index, self._epochs)
        if left is not None:
            parts.append(f'job ETA {format_seconds(left)}')
        self._write(f'{self._prefix()}: ' + ', '.join(parts), final=False)

    def after_test_epoch(self, runner,
                         metrics: Optional[Dict[str, float]] = None) -> None:
        metrics = metrics or {}
        epochs = f'{self._epochs} epoch' + 's' * (self._epochs != 1)
        parts = [f'{epochs} in {format_seconds(self._seconds)}']
        if 'accuracy/top1' in metrics:
            text = f'test top-1 {metrics["accuracy/top1"]:.2f} %'
            if 'teacher/accuracy/top1' in metrics:
                text += (' (teacher '
                         f'{metrics["teacher/accuracy/top1"]:.2f} %)')
            parts.append(text)
        self._write(f'{self._prefix()}: ' + ', '.join(parts), final=True)
