"""--amp settings keep AdderNet's gradients right; RNG state round trip."""
import argparse
import os.path as osp
import random
import sys

import numpy as np
import pytest
import torch

from mmpkkd.engine import RNGStateHook
from mmpkkd.models.layers import Adder2d


def adder_weight_grad(scaler=None) -> torch.Tensor:
    torch.manual_seed(0)
    layer = Adder2d(4, 6, 3, padding=1)
    x = torch.randn(2, 4, 8, 8)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = layer(x).float().pow(2).mean()
    if scaler is None:
        loss.backward()
    else:
        scaler.scale(loss).backward()
        optim = torch.optim.SGD(layer.parameters(), lr=0.1)
        scaler.unscale_(optim)
    return layer.weight.grad.clone()


def test_amp_settings_keep_adaptive_lr_exact(monkeypatch):
    sys.path.insert(0, osp.join(osp.dirname(osp.dirname(__file__)), 'tools'))
    import train  # tools/train.py
    reference = adder_weight_grad()
    # the norm AdderNet's adaptive learning rate sets: eta * sqrt(numel)
    assert reference.norm().item() == pytest.approx(0.2 * (6 * 4 * 9)**0.5,
                                                    rel=1e-5)
    fixed = torch.amp.GradScaler(
        'cpu', init_scale=train.AMP_SETTINGS['loss_scale'])
    torch.testing.assert_close(adder_weight_grad(fixed), reference)
    # a dynamic fp16-style scale would shrink the adder gradient by the scale
    dynamic = torch.amp.GradScaler('cpu', init_scale=2.0**16)
    assert adder_weight_grad(dynamic).norm() < reference.norm() / 1000

    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    args = argparse.Namespace(
        config=osp.join(osp.dirname(osp.dirname(__file__)), 'configs', 'ann',
                        'resnet20_digits.py'),
        cfg_options=None,
        work_dir='/tmp/unused', launcher='none', amp=True, resume=None,
        no_validate=False, tensorboard=False, auto_scale_lr=False)
    cfg = train.build_config(args)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'bfloat16'
    assert cfg.optim_wrapper.loss_scale == 1.0


def test_rng_state_hook_round_trip():
    hook, checkpoint = RNGStateHook(), {}
    hook.before_save_checkpoint(None, checkpoint)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.random(), np.random.rand(), torch.rand(3)  # move on
    hook.after_load_checkpoint(None, checkpoint)
    assert (random.random(), np.random.rand(),
            torch.rand(1).item()) == expected
