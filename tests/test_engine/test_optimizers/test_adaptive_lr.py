"""AdderNet's adaptive learning rate at the optimizer step.

The reference for every invariance test is one float32 step on the whole
batch, computed with the same formula written out here:
``g <- eta * sqrt(numel) * g / ||g||``, then SGD with momentum and weight
decay. DDP, accumulation and loss scales must reproduce it.
"""
import argparse
import copy
import math
import os
import os.path as osp
import pickle
import sys
import warnings

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from mmpkkd.engine import AdderOptimWrapper, AmpAdderOptimWrapper
from mmpkkd.models import (AdaptiveLRError, Adder2d, UnscaledAdderGradWarning,
                           rescale_adder_grads)

from conftest import REPO  # noqa: E402
ETA, LR, MOMENTUM, WD = 0.2, 0.1, 0.9, 5e-4


def bn_free_model(seed: int = 0) -> nn.Module:
    """Adder -> adder -> linear: batch statistics play no part."""
    torch.manual_seed(seed)
    return nn.Sequential(
        Adder2d(3, 6, 3, padding=1, eta=ETA),
        Adder2d(6, 4, 3, stride=2, eta=ETA), nn.Flatten(),
        nn.Linear(4 * 3 * 3, 5))


def batch(n: int = 16, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=gen), torch.randint(
        0, 5, (n, ), generator=gen)


def loss_of(model: nn.Module, x, y) -> torch.Tensor:
    # logits of adder nets are large; scale so CE is not saturated
    return F.cross_entropy(model(x) / 100, y)


def sgd(model: nn.Module) -> torch.optim.SGD:
    return torch.optim.SGD(
        model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)


def reference_step(model: nn.Module, x, y) -> nn.Module:
    """One step on the whole batch, adaptive lr written out by hand."""
    model = copy.deepcopy(model)
    loss_of(model, x, y).backward()
    for layer in model.modules():
        if isinstance(layer, Adder2d):
            g = layer.weight.grad
            g.copy_(ETA * math.sqrt(g.numel()) * g / g.norm())
    with warnings.catch_warnings():  # rescaled by hand, not by mmpkkd
        warnings.simplefilter('ignore', UnscaledAdderGradWarning)
        sgd(model).step()
    return model


def adder_weights(model: nn.Module):
    return [m.weight.detach().clone() for m in model.modules()
            if isinstance(m, Adder2d)]


def assert_same_update(got: nn.Module, want: nn.Module, start: nn.Module):
    for g, w, s in zip(adder_weights(got), adder_weights(want),
                       adder_weights(start)):
        # compare the updates (w - w0), not the weights, so a 1e-5
        # tolerance is relative to the step actually taken
        torch.testing.assert_close(g - s, w - s, rtol=1e-5, atol=1e-6)


def test_rescaled_gradient_has_addernet_norm_and_direction():
    model = bn_free_model()
    x, y = batch()
    loss_of(model, x, y).backward()
    raw = [g.clone() for g in (m.weight.grad for m in model.modules()
                                if isinstance(m, Adder2d))]
    linear_raw = model[3].weight.grad.clone()
    assert rescale_adder_grads(model) == 2
    for g_raw, layer in zip(raw, [m for m in model.modules()
                                  if isinstance(m, Adder2d)]):
        g = layer.weight.grad
        assert g.norm().item() == pytest.approx(
            ETA * math.sqrt(g.numel()), rel=1e-6)
        cos = F.cosine_similarity(g.flatten(), g_raw.flatten(), dim=0)
        assert cos.item() == pytest.approx(1.0, abs=1e-6)
    # the linear layer keeps its raw gradient
    assert torch.equal(model[3].weight.grad, linear_raw)


def test_rescale_is_one_multi_tensor_pass(monkeypatch):
    # all adder gradients of a step share one torch._foreach_norm call and
    # one foreach multiply, instead of a norm and a multiply per layer
    model = bn_free_model()
    x, y = batch()
    loss_of(model, x, y).backward()
    calls = {'norm': 0, 'mul': 0, 'tensor.norm': 0}
    foreach_norm, foreach_mul = torch._foreach_norm, torch._foreach_mul_
    tensor_norm = torch.Tensor.norm

    def count(key, fn):
        def wrapped(*args, **kwargs):
            calls[key] += 1
            return fn(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(torch, '_foreach_norm', count('norm', foreach_norm))
    monkeypatch.setattr(torch, '_foreach_mul_', count('mul', foreach_mul))
    monkeypatch.setattr(torch.Tensor, 'norm',
                        count('tensor.norm', tensor_norm))
    assert rescale_adder_grads(model) == 2
    # (two foreach multiplies: the scales, then the gradients)
    assert calls == {'norm': 1, 'mul': 2, 'tensor.norm': 0}


def test_wrapper_equals_hand_written_step():
    model, (x, y) = bn_free_model(), batch()
    want = reference_step(model, x, y)
    got = copy.deepcopy(model)
    wrapper = AdderOptimWrapper(optimizer=sgd(got))
    wrapper.update_params(loss_of(got, x, y))
    assert_same_update(got, want, model)
    # and the non-adder layer got the plain SGD step
    torch.testing.assert_close(got[3].weight, want[3].weight)


def test_accumulation_equals_the_whole_batch():
    model, (x, y) = bn_free_model(), batch()
    want = reference_step(model, x, y)
    got = copy.deepcopy(model)
    wrapper = AdderOptimWrapper(optimizer=sgd(got), accumulative_counts=2)
    for half in (slice(0, 8), slice(8, 16)):
        wrapper.update_params(loss_of(got, x[half], y[half]))
    assert_same_update(got, want, model)

    # sensitivity: normalising each micro-batch (the old in-backward
    # rescaling) gives a clearly different gradient, so the test can fail
    def normalised_grads(xs, ys):
        grads = adder_grads(model, xs, ys)
        return [ETA * math.sqrt(g.numel()) * g / g.norm() for g in grads]

    halves = [normalised_grads(x[:8], y[:8]), normalised_grads(x[8:], y[8:])]
    per_micro_batch = [(a + b) / 2 for a, b in zip(*halves)]
    whole = normalised_grads(x, y)
    rel = max(((a - b).norm() / b.norm()).item()
              for a, b in zip(per_micro_batch, whole))
    assert rel > 1e-3  # 100x the tolerance of the invariance above


def adder_grads(model, x, y):
    model = copy.deepcopy(model)
    loss_of(model, x, y).backward()
    return [m.weight.grad for m in model.modules() if isinstance(m, Adder2d)]


def test_dynamic_loss_scale_is_exact(monkeypatch):
    """AmpAdderOptimWrapper.step on the CPU with a loss scale of 2^16."""
    from mmengine.optim.optimizer import amp_optimizer_wrapper
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available',
                        lambda: True)
    model, (x, y) = bn_free_model(), batch()
    want = reference_step(model, x, y)
    got = copy.deepcopy(model)
    wrapper = AmpAdderOptimWrapper(optimizer=sgd(got), loss_scale='dynamic')
    # the same unscale path, with torch's CPU scaler in place of CUDA's
    wrapper.loss_scaler = torch.amp.GradScaler('cpu', init_scale=2.0**16)
    wrapper.update_params(loss_of(got, x, y))
    assert_same_update(got, want, model)
    assert wrapper.loss_scaler.get_scale() == 2.0**16  # finite: no backoff


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_dynamic_loss_scale_cuda_amp_wrapper():
    model, (x, y) = bn_free_model().cuda(), batch()
    x, y = x.cuda(), y.cuda()
    want = reference_step(model, x, y)
    got = copy.deepcopy(model)
    wrapper = AmpAdderOptimWrapper(
        optimizer=sgd(got), loss_scale=dict(init_scale=2.0**16),
        dtype='float16')
    with wrapper.optim_context(got):
        loss = loss_of(got, x, y)
    wrapper.update_params(loss)
    # float16 autocast of the linear layer: looser than the fp32 test
    for g, w, s in zip(adder_weights(got), adder_weights(want),
                       adder_weights(model)):
        torch.testing.assert_close(g - s, w - s, rtol=1e-2, atol=1e-3)


def _ddp_worker(rank: int, world: int, init_file: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        'gloo', init_method=f'file://{init_file}', rank=rank,
        world_size=world)
    try:
        model = bn_free_model()
        x, y = batch()
        half = slice(8 * rank, 8 * (rank + 1))
        ddp = nn.parallel.DistributedDataParallel(model)
        wrapper = AdderOptimWrapper(optimizer=sgd(ddp))
        wrapper.update_params(loss_of(ddp, x[half], y[half]))
        if rank == 0:
            with open(out, 'wb') as f:
                pickle.dump([w.numpy() for w in adder_weights(model)], f)
        dist.barrier()  # neither rank tears down while the other works
    finally:
        dist.destroy_process_group()


def test_two_ddp_processes_equal_one_process(tmp_path):
    out = str(tmp_path / 'weights.pkl')
    mp.start_processes(
        _ddp_worker, args=(2, str(tmp_path / 'init'), out), nprocs=2,
        start_method='spawn')
    with open(out, 'rb') as f:
        ddp_weights = [torch.from_numpy(w) for w in pickle.load(f)]
    model, (x, y) = bn_free_model(), batch()
    want = adder_weights(reference_step(model, x, y))
    for g, w, s in zip(ddp_weights, want, adder_weights(model)):
        torch.testing.assert_close(g - s, w - s, rtol=1e-5, atol=1e-6)


def test_unscaled_step_warns_once_naming_the_layer():
    model, (x, y) = bn_free_model(), batch()
    optimizer = sgd(model)
    loss_of(model, x, y).backward()
    with pytest.warns(UnscaledAdderGradWarning) as record:
        optimizer.step()
    messages = [str(r.message) for r in record]
    assert len(messages) == 2  # one per adder layer
    assert 'Adder2d(3, 6, kernel_size=(3, 3)' in messages[0]
    assert 'AdderOptimWrapper' in messages[0]
    loss_of(model, x, y).backward()
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        optimizer.step()  # once per layer only


def test_rescaled_step_does_not_warn_and_twice_is_an_error():
    model, (x, y) = bn_free_model(), batch()
    optimizer = sgd(model)
    loss_of(model, x, y).backward()
    rescale_adder_grads(model)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        optimizer.step()
    with pytest.raises(AdaptiveLRError, match='rescaled twice'):
        rescale_adder_grads(model)
    # a new backward gives a new gradient, which may be rescaled again
    optimizer.zero_grad()
    loss_of(model, x, y).backward()
    assert rescale_adder_grads(model) == 2


def test_adaptive_lr_off_leaves_the_gradient_alone():
    model, (x, y) = bn_free_model(), batch()
    model[0].adaptive_lr = False
    loss_of(model, x, y).backward()
    raw = model[0].weight.grad.clone()
    assert rescale_adder_grads(model) == 1
    torch.testing.assert_close(model[0].weight.grad, raw)


def test_layer_survives_pickle_and_deepcopy():
    model = bn_free_model()
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        x, y = batch()
        loss_of(clone, x, y).backward()
        assert rescale_adder_grads(clone) == 2


@pytest.mark.parametrize('leaf', [
    'ann/ann_resnet20_1xb64-15e_digits.py',
    'pkkd/pkkd_resnet20_1xb64-15e_digits.py',
    'ann/ann_resnet20_1xb256-400e_cifar10.py',
    'pkkd/pkkd_resnet50_8xb32-150e_in1k.py',
    'ann/ann_vgg-small_1xb256-400e_cifar100.py'
])
def test_shipped_configs_build_the_adder_wrapper(leaf):
    cfg = Config.fromfile(osp.join(REPO, 'configs', leaf))
    from mmengine.registry import init_default_scope
    init_default_scope('mmpkkd')
    wrapper = build_optim_wrapper(nn.Linear(2, 2), cfg.optim_wrapper)
    assert type(wrapper) is AdderOptimWrapper


@pytest.mark.parametrize('amp, dtype, loss_scale', [
    ('bfloat16', 'bfloat16', 1.0),
    ('float16', 'float16', 'dynamic'),
])
def test_train_py_amp_settings(monkeypatch, amp, dtype, loss_scale):
    sys.path.insert(0, osp.join(REPO, 'tools'))
    import train  # tools/train.py
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    args = argparse.Namespace(
        config=osp.join(REPO, 'configs', 'ann',
                        'ann_resnet20_1xb64-15e_digits.py'),
        cfg_options=None, work_dir='/tmp/unused', launcher='none', amp=amp,
        resume=None, no_validate=False, tensorboard=False,
        auto_scale_lr=False)
    cfg = train.build_config(args)
    assert cfg.optim_wrapper.type == 'AmpAdderOptimWrapper'
    assert cfg.optim_wrapper.dtype == dtype
    assert cfg.optim_wrapper.loss_scale == loss_scale


def test_checkpoint_of_a_plain_optim_wrapper_resumes(tmp_path):
    """Checkpoints of the previous version (a plain OptimWrapper with the
    rescaling in the op) resume under the adder wrapper with their momentum
    buffers unchanged, and training goes on from them."""
    import subprocess

    from mmpkkd.engine import safe_torch_load
    from mmpkkd.runtime import build_runner
    old, new = str(tmp_path / 'old'), str(tmp_path / 'new')
    config = 'configs/ann/ann_resnet20_1xb64-15e_digits.py'

    def train(work_dir, *extra, epochs, cfg=()):
        """tools/train.py on 128 digits (2 iterations an epoch)."""
        proc = subprocess.run(
            [sys.executable, 'tools/train.py', config, '--work-dir',
             work_dir, *extra, '--cfg-options',
             f'train_cfg.max_epochs={epochs}', 'train_cfg.val_interval=9',
             'train_dataloader.dataset.indices=128', *cfg],
            cwd=REPO, capture_output=True, text=True,
            env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1'))
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc

    train(old, epochs=1, cfg=['optim_wrapper.type=OptimWrapper'])
    ckpt = osp.join(old, 'epoch_1.pth')
    saved = safe_torch_load(ckpt)['optimizer']['state']
    before = {i: s['momentum_buffer'] for i, s in saved.items()}
    assert before and all(b.abs().sum() > 0 for b in before.values())

    # what tools/train.py --resume does, stopped right after the resume
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.work_dir, cfg.resume, cfg.load_from = new, True, ckpt
    runner = build_runner(cfg)
    runner.load_or_resume()
    assert type(runner.optim_wrapper) is AdderOptimWrapper
    after = runner.optim_wrapper.optimizer.state_dict()['state']
    assert sorted(after) == sorted(before)
    for i, buffer in before.items():
        assert torch.equal(after[i]['momentum_buffer'], buffer), i

    # and the tool trains on from them
    proc = train(str(tmp_path / 'cli'), '--resume', ckpt, epochs=2)
    assert 'resumed epoch: 1' in proc.stdout + proc.stderr
    state = safe_torch_load(osp.join(tmp_path, 'cli', 'epoch_2.pth'))
    assert state['meta']['epoch'] == 2
    moved = state['optimizer']['state']
    assert sorted(moved) == sorted(before)
    assert not all(
        torch.equal(moved[i]['momentum_buffer'], b) for i, b in before.items())
