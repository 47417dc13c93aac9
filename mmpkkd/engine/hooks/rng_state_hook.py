"""Save and restore every rank's random-number-generator states."""
import logging
from typing import List, Optional

from mmengine.dist import all_gather_object, get_dist_info
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop

from mmpkkd.registry import HOOKS
from .rng_state import RNGState, get_rng_state, same_rng_state, set_rng_state


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Make ``--resume`` continue exactly where the checkpoint was written.

    MMEngine seeds the generators once at start-up, so after a resume the
    training process's own random draws (dropout, Mixup/CutMix, any torch
    sampling) would replay the first epoch's random numbers instead of
    continuing the sequence. (Data augmentations do not depend on it: the
    ``SeededSampler`` seeds each sample from (seed, epoch, index), in the
    main process or a worker alike.) This hook stores the Python, numpy and
    torch (CPU and CUDA) generator states of *every rank* in
    ``checkpoint['rng_state']`` and gives each rank its own back when
    resuming, so runs with ``randomness=dict(diff_rank_seed=True)`` resume
    exactly too. The states are plain tensors, arrays and tuples, so the
    safe checkpoint loader accepts them.

    MMEngine writes checkpoints on rank 0 only, so in a distributed run the
    ranks' states are gathered (one small ``all_gather_object``) at the end
    of every training iteration and epoch, after the other hooks and just
    before the ``CheckpointHook`` saves. A checkpoint is resumed with the
    states of the same rank. On another number of ranks the states are
    restored only where all ranks had the same state (the default
    ``diff_rank_seed=False``); otherwise each rank keeps its start-up seed
    and a warning says so. With ``IterBasedTrainLoop`` the states are
    restored at the first iteration after the resume, after MMEngine has
    skipped the batches already trained on.

    Example:
        >>> custom_hooks = [dict(type='RNGStateHook')]
    """

    # after the hooks that draw random numbers at the end of an iteration or
    # epoch (e.g. PreciseBN's data loading), before CheckpointHook
    # ('VERY_LOW')
    priority = 'LOW'

    def __init__(self) -> None:
        self._gathered: Optional[List[RNGState]] = None
        self._gathered_at: Optional[int] = None
        self._pending: Optional[RNGState] = None

    # ------------------------------------------------------------ saving
    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        self._gather(runner)

    def after_train_epoch(self, runner) -> None:
        self._gather(runner)

    def _gather(self, runner) -> None:
        """Collect every rank's states (a collective: all ranks call it)."""
        if get_dist_info()[1] > 1:
            self._gathered = all_gather_object(get_rng_state())
            self._gathered_at = runner.iter

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        world_size = get_dist_info()[1]
        if world_size == 1:
            ranks = [get_rng_state()]
        elif self._gathered is not None and self._gathered_at == runner.iter:
            ranks = self._gathered
        else:  # saved before any training iteration: rank 0's own only
            ranks = [get_rng_state()]
        checkpoint['rng_state'] = dict(world_size=world_size, ranks=ranks)

    # ----------------------------------------------------------- resuming
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        saved: Optional[dict] = checkpoint.get('rng_state')
        if saved is None:
            return
        state = self._state_of_this_rank(runner, saved)
        if state is None:
            return
        if isinstance(getattr(runner, '_train_loop', None),
                      IterBasedTrainLoop):
            # the loop skips the trained batches after this; restore once
            # they are skipped, so their loading draws nothing from `state`
            self._pending = state
        else:
            set_rng_state(state)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if self._pending is not None:
            set_rng_state(self._pending)
            self._pending = None

    def _state_of_this_rank(self, runner,
                            saved: dict) -> Optional[RNGState]:
        """This rank's saved state, or None (and a warning) if the
        checkpoint does not hold it."""
        rank, world_size = get_dist_info()
        if 'ranks' in saved:
            ranks, saved_world = saved['ranks'], saved['world_size']
        else:  # written by an older mmpkkd: rank 0's states only
            ranks, saved_world = [saved], None
        complete = len(ranks) == saved_world
        if complete and saved_world == world_size:
            return ranks[rank]
        if complete:
            alike = all(same_rng_state(ranks[0], s) for s in ranks[1:])
        else:  # ranks seeded alike draw alike
            alike = not _diff_rank_seed(runner)
        if alike or rank == 0:
            state = ranks[0]
        else:
            state = None
        if not alike and rank == 0:
            print_log(
                'RNGStateHook: the checkpoint holds the random generator '
                f'states of {len(ranks)} rank(s) that differ '
                '(randomness.diff_rank_seed=True), not those of the '
                f'{world_size} ranks of this run. Rank 0 continues its '
                'random sequence; the other ranks restart theirs from their '
                'start-up seeds. Resume on as many processes as the '
                'checkpoint was written by for an exact continuation.',
                logger='current', level=logging.WARNING)
        return state


def _diff_rank_seed(runner) -> bool:
    cfg = getattr(runner, 'cfg', None) or {}
    randomness = cfg.get('randomness', None) or {}
    return bool(randomness.get('diff_rank_seed', False))
