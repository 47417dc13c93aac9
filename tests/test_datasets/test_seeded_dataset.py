"""SeededDataset: exact resume with any data set, here mmpretrain's
CustomDataset on a folder of PNG images written by the test.

The reference for "exact" is the uninterrupted run: a run killed in the
middle of epoch 2 and resumed from epoch_1.pth, with two persistent
data-loading workers, must see every sample of epoch 2 augmented as the
uninterrupted run saw it, and end on the same weights bit for bit.
"""
import os
import os.path as osp
import pickle
import random
from typing import Dict, Tuple

import mmcv
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dataset import DefaultSampler
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmpkkd.datasets import SeededDataset, SeededIndex, SeededSampler
from mmpkkd.engine import safe_torch_load

N_IMAGES, BATCH, EPOCHS = 12, 4, 2  # 3 iterations per epoch
CRASH_AT = (1, 1)  # (epoch, iteration) from 0: the middle of epoch 2
PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=12, padding=2),  # 25 offsets
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]

#: {(epoch, sample index): augmented image}
Images = Dict[Tuple[int, int], torch.Tensor]


@pytest.fixture(scope='module')
def image_folder(tmp_path_factory) -> str:
    """12 random 12x12 PNGs in two class folders (CustomDataset's layout
    with labels from the sub-folder names)."""
    root = str(tmp_path_factory.mktemp('images'))
    rng = np.random.default_rng(0)
    for i in range(N_IMAGES):
        folder = osp.join(root, 'cat' if i % 2 else 'dog')
        os.makedirs(folder, exist_ok=True)
        img = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
        assert mmcv.imwrite(img, osp.join(folder, f'{i:02d}.png'))
    return root


def custom_cfg(root: str) -> dict:
    return dict(type='CustomDataset', data_root=root, pipeline=PIPELINE)


def test_sampler_refuses_the_bare_data_set_and_names_the_wrapper(
        image_folder):
    init_default_scope('mmpkkd')
    from mmpretrain.datasets import CustomDataset
    bare = CustomDataset(data_root=image_folder, pipeline=PIPELINE)
    with pytest.raises(TypeError) as err:
        SeededSampler(bare, seed=0)
    message = str(err.value)
    assert ("dataset=dict(type='SeededDataset', dataset=dict("
            "type='CustomDataset', ...))") in message
    wrapped = SeededDataset(custom_cfg(image_folder))
    assert len(list(SeededSampler(wrapped, seed=0))) == N_IMAGES
    # the wrapper shows the data set's own attributes
    assert wrapped.metainfo['classes'] == ('cat', 'dog')
    assert wrapped.get_data_info(0) == bare.get_data_info(0)


def test_augmentation_is_a_function_of_seed_epoch_and_index(image_folder):
    init_default_scope('mmpkkd')
    ds = SeededDataset(custom_cfg(image_folder))

    def aug(i, epoch):
        random.random(), np.random.rand(), torch.rand(1)  # move on
        return ds[SeededIndex(i, seed=0, epoch=epoch)]['inputs']

    same = sum(torch.equal(aug(i, 1), aug(i, 1)) for i in range(N_IMAGES))
    assert same == N_IMAGES
    # a new epoch draws new augmentations (50 crop x flip outcomes)
    same = sum(torch.equal(aug(i, 1), aug(i, 2)) for i in range(N_IMAGES))
    assert same <= 2
    # a plain index leaves the global generators to the data set: the
    # bare pipeline does not repeat itself
    plain = [ds[i]['inputs'] for i in range(N_IMAGES)]
    again = [ds[i]['inputs'] for i in range(N_IMAGES)]
    assert sum(torch.equal(a, b) for a, b in zip(plain, again)) <= 2
    # and the sample index stays a plain int
    sample = ds[SeededIndex(3, seed=0, epoch=1)]['data_samples']
    assert type(sample.sample_idx) is int


class TinyClassifier(BaseModel):
    """Linear classifier on the 12x12 images (no randomness of its own)."""

    def __init__(self):
        super().__init__(data_preprocessor=dict(type='ImgDataPreprocessor'))
        torch.manual_seed(0)
        self.fc = nn.Linear(3 * 12 * 12, 2)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        logits = self.fc(inputs.flatten(1) / 255)
        if mode == 'loss':
            labels = torch.cat([s.gt_label for s in data_samples])
            return dict(loss=F.cross_entropy(logits, labels))
        return logits


class RecordImages(Hook):

    def __init__(self):
        self.images: Images = {}

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        for img, sample in zip(data_batch['inputs'],
                               data_batch['data_samples']):
            self.images[(runner.epoch, sample.sample_idx)] = img.clone()


class Crash(Hook):

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if (runner.epoch, batch_idx) == CRASH_AT:
            raise KeyboardInterrupt('simulated crash')


def train(root: str, work_dir: str, name: str, resume: bool = False,
          crash: bool = False) -> Images:
    recorder = RecordImages()
    runner = Runner(
        model=TinyClassifier(),
        work_dir=work_dir,
        experiment_name=name,
        default_scope='mmpkkd',
        train_dataloader=dict(
            batch_size=BATCH,
            num_workers=2,
            persistent_workers=True,
            sampler=dict(type='SeededSampler', shuffle=True),
            dataset=dict(type='SeededDataset', dataset=custom_cfg(root))),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=True, max_epochs=EPOCHS),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1),
            logger=dict(type='LoggerHook', interval=100)),
        custom_hooks=[recorder] + ([Crash()] if crash else []),
        randomness=dict(seed=0),
        log_level='WARNING',
        resume=resume)
    try:
        runner.train()
    except KeyboardInterrupt:
        assert crash
    finally:  # stop the persistent workers now, not at garbage collection
        iterator = getattr(runner.train_loop.dataloader, '_iterator', None)
        if iterator is not None:
            iterator._shutdown_workers()
    return recorder.images


def test_resume_mid_epoch_is_exact_with_workers(image_folder, tmp_path):
    full_dir, crash_dir = str(tmp_path / 'full'), str(tmp_path / 'crash')
    full = train(image_folder, full_dir, 'seeded_full')
    train(image_folder, crash_dir, 'seeded_crash', crash=True)
    assert not osp.exists(osp.join(crash_dir, f'epoch_{EPOCHS}.pth'))
    resumed = train(image_folder, crash_dir, 'seeded_resumed', resume=True)

    later = {k: v for k, v in full.items() if k[0] >= 1}
    assert resumed.keys() == later.keys() and len(later) == N_IMAGES
    for key, img in later.items():
        assert torch.equal(resumed[key], img), key
    a = safe_torch_load(osp.join(full_dir, f'epoch_{EPOCHS}.pth'))
    b = safe_torch_load(osp.join(crash_dir, f'epoch_{EPOCHS}.pth'))
    for key, value in a['state_dict'].items():
        assert torch.equal(value, b['state_dict'][key]), key
    # epochs 1 and 2 were augmented differently
    same = sum(torch.equal(full[(0, i)], full[(1, i)])
               for i in range(N_IMAGES))
    assert same <= 2


def test_wrapper_pickles_for_spawned_workers(image_folder):
    init_default_scope('mmpkkd')
    ds = SeededDataset(custom_cfg(image_folder))
    back = pickle.loads(pickle.dumps(ds))
    idx = SeededIndex(5, seed=1, epoch=0)
    assert torch.equal(back[idx]['inputs'], ds[idx]['inputs'])
    assert len(list(DefaultSampler(back, seed=0))) == N_IMAGES
