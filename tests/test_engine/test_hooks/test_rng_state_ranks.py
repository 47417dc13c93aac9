"""RNGStateHook keeps every rank's own random sequence across a resume.

Two gloo processes with ``randomness.diff_rank_seed=True`` train a tiny
model whose loss draws from all three global generators on every rank
(torch dropout, a numpy Beta "Mixup" factor, Python's ``random``), under
DDP, so the weights depend on both ranks' draws. One run goes 8 iterations
uninterrupted; another is killed after iteration 7 and resumed from
``iter_5.pth``, in the middle of a pass over the data (4 iterations). The
resumed run must draw the same numbers on each rank and end on the same
weights, bit for bit.
"""
import os
import os.path as osp
import pickle
import random
import warnings

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from torch.utils.data import Dataset

from mmpkkd.engine import RNGStateHook, safe_torch_load
from mmpkkd.engine.hooks.rng_state import get_rng_state, set_rng_state

#: 4 iterations per pass: iter_5.pth lies in the middle of the second pass,
#: so the resumed run's skip of the 5 trained batches starts a new pass (a
#: DataLoader iterator, which draws a seed from torch's generator) before
#: training goes on; CRASH_AFTER counts from 0
MAX_ITERS, CKPT_INTERVAL, CRASH_AFTER = 8, 5, 6


class Points(Dataset):
    """16 fixed 4-d points: 4 iterations per pass on 2 ranks x batch 2."""

    def __len__(self) -> int:
        return 16

    def __getitem__(self, idx: int) -> dict:
        gen = torch.Generator().manual_seed(idx)
        return dict(inputs=torch.randn(4, generator=gen))


class NoisyModel(BaseModel):
    """A linear layer whose loss uses every global generator."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(4, 3)
        self.drop = nn.Dropout(0.5)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = torch.stack(inputs)
        lam = float(np.random.beta(1.0, 1.0)) * (0.5 + random.random())
        out = self.drop(self.fc(x)) * lam
        if mode == 'loss':
            return dict(loss=out.square().mean())
        return out


class RecordDraws(Hook):
    """Draw from each generator after every iteration, by iteration."""

    def __init__(self):
        self.draws = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.draws[runner.iter] = (torch.rand(1).item(), np.random.rand(),
                                   random.random())


class Crash(Hook):

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter == CRASH_AFTER:
            raise KeyboardInterrupt('simulated crash')


def run(work_dir: str, name: str, resume: bool = False,
        crash: bool = False) -> dict:
    from mmengine.runner import Runner
    recorder = RecordDraws()
    hooks = [RNGStateHook(), recorder] + ([Crash()] if crash else [])
    runner = Runner(
        model=NoisyModel(),
        work_dir=work_dir,
        experiment_name=name,
        train_dataloader=dict(
            dataset=Points(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=2,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=MAX_ITERS),
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook', interval=CKPT_INTERVAL,
                by_epoch=False),
            logger=dict(type='LoggerHook', interval=100)),
        custom_hooks=hooks,
        randomness=dict(seed=0, diff_rank_seed=True),
        launcher='pytorch',
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        cfg=dict(  # read by the runner where no argument exists
            model_wrapper_cfg=dict(
                type='MMDistributedDataParallel', device_ids=None,
                broadcast_buffers=False),
            randomness=dict(seed=0, diff_rank_seed=True)),
        log_level='WARNING',
        resume=resume)
    try:
        runner.train()
    except KeyboardInterrupt:
        assert crash
    return recorder.draws


def _worker(rank: int, world: int, tmp: str) -> None:
    torch.set_num_threads(1)
    os.environ['LOCAL_RANK'] = str(rank)  # read by Runner.wrap_model
    dist.init_process_group(
        'gloo', init_method=f'file://{tmp}/init', rank=rank,
        world_size=world)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            full = run(osp.join(tmp, 'full'), 'full')
            run(osp.join(tmp, 'crash'), 'crash', crash=True)
            dist.barrier()
            resumed = run(osp.join(tmp, 'crash'), 'resumed', resume=True)
        with open(osp.join(tmp, f'draws.{rank}'), 'wb') as f:
            pickle.dump(dict(full=full, resumed=resumed), f)
        dist.barrier()  # neither rank tears down while the other works
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope='module')
def two_rank_runs(tmp_path_factory) -> str:
    tmp = str(tmp_path_factory.mktemp('rng_ranks'))
    mp.start_processes(_worker, args=(2, tmp), nprocs=2, start_method='spawn')
    return tmp


def draws_of(tmp: str, rank: int) -> dict:
    with open(osp.join(tmp, f'draws.{rank}'), 'rb') as f:
        return pickle.load(f)


def test_each_rank_continues_its_own_random_sequence(two_rank_runs):
    ranks = [draws_of(two_rank_runs, r) for r in range(2)]
    for draws in ranks:
        assert sorted(draws['full']) == list(range(MAX_ITERS))
        # the resumed run starts after iter_5.pth (iterations 0-4)
        assert sorted(draws['resumed']) == list(range(CKPT_INTERVAL,
                                                      MAX_ITERS))
        for it, values in draws['resumed'].items():
            assert values == draws['full'][it], it
    # the ranks really draw differently (diff_rank_seed), so restoring
    # rank 0's state on rank 1 could not pass the check above
    for it in range(MAX_ITERS):
        assert ranks[0]['full'][it] != ranks[1]['full'][it]


def test_resumed_weights_equal_the_uninterrupted_run(two_rank_runs):
    ckpt = f'iter_{MAX_ITERS}.pth'
    full = safe_torch_load(osp.join(two_rank_runs, 'full', ckpt))
    resumed = safe_torch_load(osp.join(two_rank_runs, 'crash', ckpt))
    assert full['meta']['iter'] == resumed['meta']['iter'] == MAX_ITERS
    for key, value in full['state_dict'].items():
        assert torch.equal(value, resumed['state_dict'][key]), key
    # the checkpoint holds both ranks' states, and they differ
    states = full['rng_state']['ranks']
    assert full['rng_state']['world_size'] == len(states) == 2
    assert not torch.equal(states[0]['torch'], states[1]['torch'])


def test_single_process_round_trip_and_old_checkpoints():
    """One process: the state written is the process's own; a checkpoint
    of an older mmpkkd (one state, not a list) still restores."""
    hook, checkpoint = RNGStateHook(), {}
    hook.before_save_checkpoint(None, checkpoint)
    assert checkpoint['rng_state']['world_size'] == 1
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    hook.after_load_checkpoint(None, checkpoint)
    assert (random.random(), np.random.rand(),
            torch.rand(1).item()) == expected
    old = dict(rng_state=get_rng_state())
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    hook.after_load_checkpoint(None, old)
    assert (random.random(), np.random.rand(),
            torch.rand(1).item()) == expected


def two_rank_checkpoint(alike: bool) -> dict:
    """Rank 0's states are the current ones; rank 1's the same, or those
    one torch draw later."""
    first = get_rng_state()
    torch.rand(1)
    second = first if alike else get_rng_state()
    set_rng_state(first)
    return dict(rng_state=dict(world_size=2, ranks=[first, second]))


@pytest.mark.parametrize('alike', [True, False])
def test_resume_on_fewer_ranks(alike, capsys):
    """A 2-rank checkpoint resumed by one process: rank 0 takes rank 0's
    states; a warning says the sequences restart only where the ranks'
    states differed."""
    from mmengine.logging import MMLogger
    MMLogger.get_instance('test_rng_state_ranks')  # a current logger
    checkpoint = two_rank_checkpoint(alike)
    expected = torch.rand(1)  # drawn right after rank 0's state
    torch.rand(5)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        RNGStateHook().after_load_checkpoint(None, checkpoint)
    assert torch.equal(torch.rand(1), expected)
    # MMEngine's logger writes to the console, not to `logging`'s root
    out = capsys.readouterr()
    warned = 'start-up seeds' in out.out + out.err
    assert warned == (not alike)
