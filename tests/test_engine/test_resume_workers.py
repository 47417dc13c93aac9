"""Exact resume and fresh augmentations with data-loading workers.

Tiny CIFAR-10 in the official on-disk format, the shipped CIFAR config
(RandomCrop with padding, RandomFlip), two workers. MMEngine seeds every
worker with ``seed + worker_id`` at start-up, without the epoch; mmpkkd's
SeededSampler + SeededPipelineMixin seed each sample from (seed, epoch,
index) instead.
"""
import os.path as osp
import pickle
from typing import Dict, Optional, Tuple

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmpkkd.engine import safe_torch_load
from conftest import write_cifar

from conftest import REPO  # noqa: E402
CONFIG = osp.join(REPO, 'configs/cnn/cnn_resnet20_1xb256-400e_cifar10.py')
BATCH = 8  # 5 x 8 = 40 training images: 5 iterations per epoch
EPOCHS = 2
CRASH_AT = (1, 2)  # (epoch, iteration) counted from 0: mid second epoch

#: {(epoch, sample index): augmented image (uint8 CHW)}
Images = Dict[Tuple[int, int], torch.Tensor]


@pytest.fixture(scope='module')
def cifar_root(tmp_path_factory) -> str:
    return write_cifar(str(tmp_path_factory.mktemp('cifar10')), 10)


def train_loader_cfg(cifar_root: str, num_workers: int,
                     persistent_workers: bool) -> dict:
    """The shipped CIFAR-10 train dataloader, on the tiny data."""
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(
        dict(
            train_dataloader=dict(
                batch_size=BATCH,
                num_workers=num_workers,
                persistent_workers=persistent_workers,
                dataset=dict(data_root=cifar_root, verify_md5=False))))
    return cfg.train_dataloader.to_dict()


def record(images: Images, epoch: int, data_batch: dict) -> None:
    for img, sample in zip(data_batch['inputs'], data_batch['data_samples']):
        images[(epoch, sample.sample_idx)] = img.clone()


class RecordBatches(Hook):
    """Keep every augmented training image, before the preprocessor."""

    def __init__(self):
        self.images: Images = {}

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        record(self.images, runner.epoch, data_batch)


class Crash(Hook):
    """Simulate a killed job: raise in one iteration of one epoch."""

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if (runner.epoch, batch_idx) == CRASH_AT:
            raise KeyboardInterrupt('simulated crash')


def train(cifar_root: str, work_dir: str, name: str, resume: bool = False,
          crash: bool = False) -> Tuple[Runner, RecordBatches]:
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(
        dict(
            work_dir=work_dir,
            experiment_name=name,  # fresh MMEngine singletons per run
            log_level='WARNING',
            resume=resume,
            train_dataloader=train_loader_cfg(
                cifar_root, num_workers=2, persistent_workers=True),
            train_cfg=dict(max_epochs=EPOCHS, val_interval=EPOCHS + 1),
            default_hooks=dict(checkpoint=dict(save_best=None))))
    for field in ('val', 'test'):
        cfg[f'{field}_cfg'] = cfg[f'{field}_dataloader'] = None
        cfg[f'{field}_evaluator'] = None
    runner = Runner.from_cfg(cfg)
    recorder = RecordBatches()
    runner.register_hook(recorder)
    if crash:
        runner.register_hook(Crash())
    return runner, recorder


def stop_workers(runner: Runner) -> None:
    """Stop the persistent workers now. Left to the garbage collector, a
    runner's DataLoader iterator can be finalised after its index queues
    and then waits 5 s per worker before terminating them."""
    iterator = getattr(runner.train_loop.dataloader, '_iterator', None)
    if iterator is not None:
        iterator._shutdown_workers()


def test_resume_mid_epoch_with_persistent_workers(cifar_root, tmp_path):
    """Killed in the middle of epoch 2 and resumed from epoch_1.pth, the
    run replays epoch 2's augmentations and ends on the same weights."""
    full_dir, crash_dir = str(tmp_path / 'full'), str(tmp_path / 'crash')
    full, full_record = train(cifar_root, full_dir, 'full')
    full.train()
    stop_workers(full)
    full_images = full_record.images

    crashed, _ = train(cifar_root, crash_dir, 'crashed', crash=True)
    with pytest.raises(KeyboardInterrupt, match='simulated crash'):
        crashed.train()
    stop_workers(crashed)
    assert not osp.exists(osp.join(crash_dir, 'epoch_2.pth'))
    resumed, resumed_record = train(
        cifar_root, crash_dir, 'resumed', resume=True)  # last checkpoint
    resumed.train()
    stop_workers(resumed)
    resumed_images = resumed_record.images

    # the resumed run saw exactly the uninterrupted run's epoch 2
    later = {k: v for k, v in full_images.items() if k[0] >= 1}
    assert resumed_images.keys() == later.keys() and len(later) == 40
    for key, img in later.items():
        assert torch.equal(resumed_images[key], img), key
    a = safe_torch_load(osp.join(full_dir, f'epoch_{EPOCHS}.pth'))
    b = safe_torch_load(osp.join(crash_dir, f'epoch_{EPOCHS}.pth'))
    assert a['state_dict'].keys() == b['state_dict'].keys()
    for key, value in a['state_dict'].items():
        assert torch.equal(value, b['state_dict'][key]), key

    # and epochs 1 and 2 were augmented differently, sample by sample
    assert_fresh_augmentations(full_images, 0, 1)


def assert_fresh_augmentations(images: Images, epoch_a: int,
                               epoch_b: int) -> None:
    """Crop offsets (81) x flips (2): a sample's two augmentations agree by
    chance with probability 1/162, so at most a few of the 40 may."""
    indices = sorted(i for e, i in images if e == epoch_a)
    assert len(indices) == 40
    same = sum(
        torch.equal(images[(epoch_a, i)], images[(epoch_b, i)])
        for i in indices)
    assert same <= 3, f'{same} of 40 samples augmented alike in both epochs'


def load_epochs(cifar_root: str, num_workers: int,
                persistent_workers: bool, sampler: Optional[str] = None,
                epochs: int = 2) -> Images:
    """Iterate the shipped train dataloader for some epochs, as the runner
    does (seeded workers, ``set_epoch`` before each epoch). The images of
    an epoch are stored in the order they were loaded."""
    init_default_scope('mmpkkd')
    cfg = train_loader_cfg(cifar_root, num_workers, persistent_workers)
    if sampler is not None:
        cfg['sampler']['type'] = sampler
    loader = Runner.build_dataloader(cfg, seed=0)
    images: Images = {}
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            record(images, epoch, batch)
    return images


@pytest.mark.parametrize('num_workers,persistent', [(2, True), (2, False)])
def test_augmentations_independent_of_workers(cifar_root, num_workers,
                                              persistent):
    """Sample i of epoch e is augmented the same with or without workers,
    persistent or not, and differently in the next epoch."""
    reference = load_epochs(cifar_root, 0, False)
    images = load_epochs(cifar_root, num_workers, persistent)
    assert images.keys() == reference.keys()
    for key, img in reference.items():
        assert torch.equal(images[key], img), key
    assert_fresh_augmentations(images, 0, 1)


@pytest.fixture(scope='module')
def one_image_root(tmp_path_factory) -> str:
    """Tiny CIFAR-10 whose 40 training images are one and the same, so an
    augmented image shows only the crop offset and the flip drawn."""
    root = write_cifar(str(tmp_path_factory.mktemp('cifar10_one')), 10)
    folder = osp.join(root, 'cifar-10-batches-py')
    first = None
    for i in range(1, 6):
        path = osp.join(folder, f'data_batch_{i}')
        with open(path, 'rb') as f:
            batch = pickle.load(f)
        first = batch['data'][0].copy() if first is None else first
        batch['data'][:] = first
        with open(path, 'wb') as f:
            pickle.dump(batch, f)
    return root


@pytest.mark.parametrize('num_workers,persistent', [(0, False), (2, False),
                                                    (2, True)])
def test_each_epoch_draws_new_augmentations(one_image_root, num_workers,
                                            persistent):
    """The draws themselves change between epochs. MMEngine seeds each new
    worker with seed + worker_id, so without per-sample seeds non-persistent
    workers replay the same crop/flip sequence every epoch (only reshuffled
    over the samples)."""
    images = load_epochs(one_image_root, num_workers, persistent)
    draws = [[img for (e, _), img in images.items() if e == epoch]
             for epoch in (0, 1)]
    assert len(draws[0]) == len(draws[1]) == 40
    same = sum(torch.equal(a, b) for a, b in zip(*draws))
    assert same <= 3, f'{same} of 40 draws repeated in the next epoch'


def test_shipped_configs_use_the_seeded_sampler():
    for name in ('cifar10', 'cifar100', 'imagenet', 'digits'):
        cfg = Config.fromfile(
            osp.join(REPO, 'configs/_base_/datasets', f'{name}.py'))
        assert cfg.train_dataloader.sampler.type == 'SeededSampler', name
