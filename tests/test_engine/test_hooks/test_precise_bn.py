"""Validation on BN statistics recomputed for the current weights.

Every shipped config runs mmpretrain's PreciseBNHook before validation and
checkpointing. For a PKKD distiller the hook's forward (``mode='tensor'`` in train mode)
runs the student and the co-trained teacher, so the BN statistics of both
must come out as the average over batches of each BN input's batch
mean/variance, computed here independently with forward hooks.
"""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmpretrain.engine.hooks.precise_bn_hook import update_bn_stats
from torch.utils.data import DataLoader

from mmpkkd.registry import MODELS

from conftest import REPO  # noqa: E402
CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs', '*', '*.py')))
CONFIGS = [c for c in CONFIGS if '_base_' not in c]


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(
    p, osp.join(REPO, 'configs')))
def test_every_config_recomputes_bn_before_validation(path):
    hooks = Config.fromfile(path).custom_hooks
    precise = [h for h in hooks if h['type'] == 'PreciseBNHook']
    assert len(precise) == 1, 'PreciseBNHook missing'
    # every epoch, and before CheckpointHook (VERY_LOW) saves the weights
    assert precise[0]['interval'] == 1
    assert precise[0]['priority'] == 'ABOVE_NORMAL'


def test_student_and_teacher_bn_statistics_are_the_batch_average():
    init_default_scope('mmpkkd')
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py'))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.train()
    gen = torch.Generator().manual_seed(0)
    images = [
        dict(inputs=torch.randint(0, 255, (3, 32, 32), generator=gen).to(
            torch.uint8)) for _ in range(18)
    ]
    loader = DataLoader(images, batch_size=6, collate_fn=pseudo_collate)
    batches = list(loader)
    bn = model.student.backbone.layer2[0].bn1
    teacher_bn = model.teacher.backbone.layer2[0].bn1

    # reference: each batch's mean / unbiased variance of the BN input
    seen = {bn: [], teacher_bn: []}
    handles = [
        layer.register_forward_pre_hook(
            lambda m, args: seen[m].append(args[0].detach().double()))
        for layer in seen
    ]
    with torch.no_grad():
        for data in batches:
            data = model.data_preprocessor(data, False)
            model.student(data['inputs'], mode='tensor')
            model.teacher(data['inputs'], mode='tensor')
    for handle in handles:
        handle.remove()

    for layer in seen:
        layer.running_mean.fill_(123.0)  # stale statistics
    update_bn_stats(model, loader, num_samples=18, logger='silent')
    for layer, feats in seen.items():
        want_mean = torch.stack([f.mean((0, 2, 3)) for f in feats]).mean(0)
        want_var = torch.stack(
            [f.transpose(0, 1).flatten(1).var(1, unbiased=True)
             for f in feats]).mean(0)
        torch.testing.assert_close(
            layer.running_mean.double(), want_mean, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(
            layer.running_var.double(), want_var, rtol=1e-4, atol=1e-4)
