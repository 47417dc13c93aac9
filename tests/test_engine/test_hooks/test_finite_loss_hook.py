"""FiniteLossHook: a diverging run stops at its first non-finite loss and
never writes non-finite weights."""
import math
import os
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.runner import Runner

from mmpkkd.engine import DivergenceError, FiniteLossHook, safe_torch_load
from mmpkkd.registry import DATASETS, MODELS


class Untouchable:
    """A loss value the hook must not read: reading a loss tensor again
    would be one more device synchronisation per iteration."""

    def __getattr__(self, name):
        raise AssertionError(f'the hook used the loss tensor ({name})')

    def __float__(self):
        raise AssertionError('the hook converted the loss tensor')


def fake_runner(values: dict, iteration: int = 6) -> SimpleNamespace:
    """What the hook sees after RuntimeInfoHook logged ``values``."""
    hub = MessageHub(f'finite_loss_{len(MessageHub._instance_dict)}')
    for key, value in values.items():
        hub.update_scalar(f'train/{key}', value)
    return SimpleNamespace(message_hub=hub, iter=iteration - 1, epoch=0,
                           train_loop=None)


def test_stops_at_a_nan_term_and_names_it():
    values = {'loss': math.nan, 'student.loss_kd': math.nan,
              'student.loss_cls': 0.5, 'accuracy': 50.0}
    runner = fake_runner(values, iteration=6)
    outputs = {key: Untouchable() for key in values}
    with pytest.raises(DivergenceError) as err:
        FiniteLossHook().after_train_iter(runner, 5, outputs=outputs)
    message = str(err.value)
    assert 'student.loss_kd = nan' in message
    assert 'student.loss_cls' not in message  # finite terms not blamed
    assert 'iteration 6' in message
    for fix in ('learning rate', 'float16', 'data'):
        assert fix in message
    assert 'default_hooks.finite_loss.check_loss=False' in message
    assert '\n' not in message


def test_names_the_total_when_only_the_sum_overflows():
    runner = fake_runner({'loss': math.inf, 'loss_cls': 3e38,
                          'loss_kd': 3e38})
    with pytest.raises(DivergenceError, match='loss = inf'):
        FiniteLossHook().after_train_iter(
            runner, 0, outputs={'loss': 0, 'loss_cls': 0, 'loss_kd': 0})


def test_finite_losses_and_opt_out_pass():
    finite = fake_runner({'loss': 1.5, 'loss_cls': 1.5})
    FiniteLossHook().after_train_iter(finite, 0, outputs={'loss': 0,
                                                          'loss_cls': 0})
    nan = fake_runner({'loss': math.nan})
    FiniteLossHook(check_loss=False).after_train_iter(
        nan, 0, outputs={'loss': Untouchable()})
    # a non-loss value (a logged statistic) is not a loss
    stat = fake_runner({'loss': 1.0, 'grad_share': math.nan})
    FiniteLossHook().after_train_iter(stat, 0, outputs={'loss': 0,
                                                        'grad_share': 0})


def test_refuses_to_save_non_finite_weights():
    runner = fake_runner({}, iteration=4)
    good = {'fc.weight': torch.ones(2, 2), 'steps': torch.tensor(3)}
    FiniteLossHook().before_save_checkpoint(runner, {'state_dict': good})
    bad = dict(good, **{'bn.running_var': torch.tensor([1., math.inf]),
                        'fc.bias': torch.tensor([math.nan, 0.])})
    with pytest.raises(DivergenceError,
                       match='bn.running_var and 1 more .* not written'):
        FiniteLossHook().before_save_checkpoint(runner,
                                                {'state_dict': bad})
    FiniteLossHook(check_weights=False).before_save_checkpoint(
        runner, {'state_dict': bad})


# ------------------------------------------------------------ a training

NAN_AT = 5  # the training iteration (from 1) whose batch holds a NaN


@MODELS.register_module(name='_FiniteTestNet', force=True)
class FiniteTestNet(BaseModel):

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        logits = self.fc(torch.stack(inputs))
        return dict(loss_cls=F.cross_entropy(logits,
                                             torch.tensor(data_samples)))


@DATASETS.register_module(name='_FiniteTestData', force=True)
class FiniteTestData(torch.utils.data.Dataset):
    """One sample per batch; sample ``NAN_AT - 1`` is NaN."""

    def __len__(self):
        return 20

    def __getitem__(self, i):
        x = torch.full((3, ), math.nan if i == NAN_AT - 1 else i / 10)
        return dict(inputs=x, data_samples=i % 2)


def test_training_stops_at_the_first_nan_loss(tmp_path):
    """Iteration checkpoints every iteration: the run stops in the NaN
    iteration, after iter_{NAN_AT-1}.pth, and every file written is
    finite."""
    runner = Runner(
        model=dict(type='_FiniteTestNet'),
        work_dir=str(tmp_path),
        experiment_name='finite_loss_training',
        train_dataloader=dict(
            dataset=dict(type='_FiniteTestData'), batch_size=1,
            sampler=dict(type='DefaultSampler', shuffle=False),
            num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=20),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=100),
            checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False,
                            interval=1),
            finite_loss=dict(type='FiniteLossHook')),
        default_scope='mmpkkd',
        log_level='ERROR')
    with pytest.raises(DivergenceError,
                       match=f'loss_cls = nan at iteration {NAN_AT}'):
        runner.train()
    saved = sorted(n for n in os.listdir(tmp_path) if n.endswith('.pth'))
    assert saved == [f'iter_{i}.pth' for i in range(1, NAN_AT)]
    for name in saved:
        state = safe_torch_load(osp.join(tmp_path, name))['state_dict']
        assert all(torch.isfinite(v).all() for v in state.values()), name
