"""Stop a diverging training at its first non-finite loss."""
import math
from typing import Dict, List, Optional

import torch
from mmengine.hooks import Hook

from mmpkkd.registry import HOOKS
from mmpkkd.utils.errors import INPUT_EXIT, UserError

#: How to switch the check off, quoted in the error.
OPT_OUT = 'default_hooks.finite_loss.check_loss=False'


class DivergenceError(UserError):
    """Training diverged: a loss or a weight is NaN or infinite."""

    def __init__(self, message: str, exit_code: int = INPUT_EXIT):
        super().__init__(message, exit_code)


def non_finite_tensors(state_dict: Dict[str, torch.Tensor]) -> List[str]:
    """Names of the floating-point tensors of ``state_dict`` that hold a
    NaN or an infinity."""
    return [
        name for name, value in state_dict.items()
        if isinstance(value, torch.Tensor) and value.is_floating_point()
        and not bool(torch.isfinite(value).all())
    ]


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Stop training at the first non-finite loss, and never save
    non-finite weights.

    A diverging run (learning rate too high, a float16 overflow, a corrupt
    batch) otherwise trains on with NaN weights to the last epoch, each
    NaN iteration often much slower than a normal one, and exits with
    status 0 after writing NaN checkpoints.

    **When it stops.** In the same iteration: after every training
    iteration, MMEngine's ``RuntimeInfoHook`` has already copied each loss
    term to the message hub as a Python float (one ``.item()`` per term,
    which is where the device synchronises for logging). This hook reads
    those floats, so it adds no device synchronisation. The optimizer step
    of that iteration has already run, so the weights in memory may be
    non-finite, but the run stops before any hook saves them: the error
    names the term, the iteration and the likely fixes, and
    ``tools/train.py`` exits with status 1. In a multi-process run the rank
    that sees the non-finite loss stops at once; the averaged NaN gradients
    make the other ranks' losses non-finite in the next iteration, and
    ``torchrun`` ends the job when the first rank exits.

    **Before every save** (``before_save_checkpoint``, epoch, iteration and
    best checkpoints alike) the weights about to be written are checked as
    well, on their CPU copies. That catches a step whose loss was finite
    but whose update was not (the last iteration of an epoch, or runs with
    ``check_loss=False``).

    **Mixed precision.** With ``--amp float16`` the dynamic loss scaler
    skips steps whose *gradients* overflow and lowers the scale; the loss
    it logs is unscaled and stays finite, so those skipped steps never
    trigger this hook. A non-finite *loss* means the forward pass itself
    overflowed or diverged; the scaler would skip that step too, but a
    loss that stays non-finite is divergence. Runs that expect occasional
    float16 forward overflows can set ``check_loss=False``: the scaler then
    handles them and the weights are still checked before each save.

    Args:
        check_loss (bool): Stop at a non-finite loss term. Defaults to True.
        check_weights (bool): Refuse to save non-finite weights. Defaults to
            True.

    Example:
        >>> default_hooks = dict(finite_loss=dict(type='FiniteLossHook'))
        >>> # opt out of the per-iteration check (weights still checked):
        >>> # --cfg-options default_hooks.finite_loss.check_loss=False
    """

    # after RuntimeInfoHook ('VERY_HIGH') has put the losses into the
    # message hub; before the logger ('BELOW_NORMAL') and the checkpoint
    # hook ('VERY_LOW')
    priority = 'HIGH'

    def __init__(self, check_loss: bool = True,
                 check_weights: bool = True) -> None:
        self.check_loss = check_loss
        self.check_weights = check_weights

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if not self.check_loss or not outputs:
            return
        scalars = runner.message_hub.log_scalars
        values = {}
        for key in outputs:
            buffer = scalars.get(f'train/{key}')
            if 'loss' in key and buffer is not None:
                values[key] = buffer.current()
        bad = [key for key, value in values.items()
               if not math.isfinite(value)]
        if not bad:
            return
        terms = [key for key in bad if key != 'loss'] or bad
        shown = ', '.join(f'{key} = {values[key]}' for key in terms)
        where = f'iteration {runner.iter + 1}'
        loop = getattr(runner, 'train_loop', None)
        if getattr(loop, '_max_epochs', None) is not None:
            try:
                length = f' of {len(loop.dataloader)}'
            except TypeError:
                length = ''
            where += (f' (epoch {runner.epoch + 1}, batch {batch_idx + 1}'
                      f'{length})')
        raise DivergenceError(
            f'training diverged: {shown} at {where}; stopped before saving '
            'a checkpoint. Likely fixes: a lower learning rate '
            '(optim_wrapper.optimizer.lr), bfloat16 or no --amp instead of '
            'float16 (loss scale), or data without NaN/Inf or corrupt '
            f'images. Resume from the last checkpoint with the fix ({OPT_OUT} '
            'skips this check).')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if not self.check_weights:
            return
        state = checkpoint.get('state_dict')
        if not isinstance(state, dict):
            return
        bad = non_finite_tensors(state)
        if bad:
            more = f' and {len(bad) - 1} more' if len(bad) > 1 else ''
            raise DivergenceError(
                f'training diverged: {bad[0]}{more} of the model is NaN or '
                f'infinite after iteration {runner.iter}; the checkpoint '
                'was not written. Likely fixes: a lower learning rate '
                '(optim_wrapper.optimizer.lr), bfloat16 or no --amp instead '
                'of float16, or data without NaN/Inf. Resume from the last '
                'checkpoint with the fix.')
