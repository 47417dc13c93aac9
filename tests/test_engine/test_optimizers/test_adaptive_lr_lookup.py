"""The adaptive learning rate finds adder weights however torch holds them.

Every case builds the model in a way that replaces the weight Parameter
objects the layers were built with (or copies the layers), trains one step
with AdderOptimWrapper, and compares the update with the hand-written
reference step of test_adaptive_lr.py (the formula written out, on a model
built plainly). A lost layer would take a plain SGD step instead, which
``test_a_lost_layer_would_be_seen`` shows is far outside the tolerance.
"""
import copy
import gc
import pickle
import weakref
import warnings

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
from mmengine.model import ExponentialMovingAverage
from test_adaptive_lr import (adder_weights, assert_same_update, batch,
                              bn_free_model, loss_of, reference_step, sgd)

from mmpkkd.engine import AdderOptimWrapper, AmpAdderOptimWrapper
from mmpkkd.models import (AdaptiveLRError, Adder2d, UnscaledAdderGradWarning,
                           rescale_adder_grads)


def weight_ids(model: nn.Module):
    return [id(m.weight) for m in model.modules() if isinstance(m, Adder2d)]


def fresh_state(model: nn.Module) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def built_on_meta(start: nn.Module) -> nn.Module:
    with torch.device('meta'):
        model = bn_free_model()
    built = weight_ids(model)
    model.to_empty(device='cpu')
    model.load_state_dict(start.state_dict())
    assert weight_ids(model) != built  # to_empty made new Parameters
    return model


def moved_with_overwrite(start: nn.Module) -> nn.Module:
    model = copy.deepcopy(start)
    built = weight_ids(model)
    flag = torch.__future__.get_overwrite_module_params_on_conversion()
    torch.__future__.set_overwrite_module_params_on_conversion(True)
    try:
        model.to('cpu')
    finally:
        torch.__future__.set_overwrite_module_params_on_conversion(flag)
    assert weight_ids(model) != built
    return model


def loaded_with_assign(start: nn.Module) -> nn.Module:
    model = bn_free_model(seed=5)
    built = weight_ids(model)
    model.load_state_dict(fresh_state(start), assign=True)
    assert weight_ids(model) != built
    return model


def deep_copied(start: nn.Module) -> nn.Module:
    return copy.deepcopy(start)


def ema_copy(start: nn.Module) -> nn.Module:
    """The averaged copy MMEngine's EMAHook keeps (made trainable here)."""
    return ExponentialMovingAverage(start).module.requires_grad_(True)


def ema_source(start: nn.Module) -> nn.Module:
    """The trained model of a run with EMA: its copy lives beside it."""
    model = copy.deepcopy(start)
    # keep the averaged copy alive beside it (a list: not a submodule)
    model.ema_models = [ExponentialMovingAverage(model)]
    return model


BUILDS = [built_on_meta, moved_with_overwrite, loaded_with_assign,
          deep_copied, ema_copy, ema_source]


@pytest.mark.parametrize('build', BUILDS, ids=lambda f: f.__name__)
@pytest.mark.parametrize('knows_model', [False, True],
                         ids=['params-only', 'optim_context'])
def test_replaced_parameters_keep_the_adaptive_lr(build, knows_model):
    start, (x, y) = bn_free_model(), batch()
    want = reference_step(start, x, y)
    model = build(start)
    wrapper = AdderOptimWrapper(optimizer=sgd(model))
    with warnings.catch_warnings():
        warnings.simplefilter('error', UnscaledAdderGradWarning)
        if knows_model:  # as MMEngine's train_step does
            with wrapper.optim_context(model):
                loss = loss_of(model, x, y)
        else:
            loss = loss_of(model, x, y)
        wrapper.update_params(loss)
    assert_same_update(model, want, start)


def test_a_lost_layer_would_be_seen():
    """Sensitivity of the test above: a plain SGD step (what a lost layer
    gets) is far from the reference update."""
    start, (x, y) = bn_free_model(), batch()
    want = reference_step(start, x, y)
    plain = copy.deepcopy(start)
    loss_of(plain, x, y).backward()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UnscaledAdderGradWarning)
        sgd(plain).step()
    with pytest.raises(AssertionError):
        assert_same_update(plain, want, start)


def clipped_reference(start: nn.Module, x, y, max_norm: float) -> nn.Module:
    """Rescale by hand, clip all gradients to ``max_norm``, SGD."""
    model = copy.deepcopy(start)
    loss_of(model, x, y).backward()
    for layer in model.modules():
        if isinstance(layer, Adder2d):
            g = layer.weight.grad
            g.copy_(layer.eta * g.numel()**0.5 * g / g.norm())
    grads = [p.grad for p in model.parameters()]
    total = torch.linalg.vector_norm(torch.stack(
        [torch.linalg.vector_norm(g) for g in grads]))
    assert total > max_norm  # the clipping acts
    for g in grads:
        g.mul_(max_norm / (total + 1e-6))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UnscaledAdderGradWarning)
        sgd(model).step()
    return model


def test_clipping_after_the_rescaling_does_not_warn():
    start, (x, y) = bn_free_model(), batch()
    want = clipped_reference(start, x, y, max_norm=1.0)
    got = copy.deepcopy(start)
    wrapper = AdderOptimWrapper(
        optimizer=sgd(got), clip_grad=dict(max_norm=1.0))
    with warnings.catch_warnings():
        warnings.simplefilter('error', UnscaledAdderGradWarning)
        wrapper.update_params(loss_of(got, x, y))
    assert_same_update(got, want, start)
    # the check still works after a clipped step: an unscaled step warns
    optimizer = wrapper.optimizer
    optimizer.zero_grad()
    loss_of(got, x, y).backward()
    with pytest.warns(UnscaledAdderGradWarning, match='Adder2d'):
        optimizer.step()


def test_amp_wrapper_with_clipping_does_not_warn(monkeypatch):
    from mmengine.optim.optimizer import amp_optimizer_wrapper
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available',
                        lambda: True)
    start, (x, y) = bn_free_model(), batch()
    want = clipped_reference(start, x, y, max_norm=1.0)
    got = copy.deepcopy(start)
    wrapper = AmpAdderOptimWrapper(
        optimizer=sgd(got), loss_scale='dynamic',
        clip_grad=dict(max_norm=1.0))
    wrapper.loss_scaler = torch.amp.GradScaler('cpu', init_scale=2.0**16)
    with warnings.catch_warnings():
        warnings.simplefilter('error', UnscaledAdderGradWarning)
        wrapper.update_params(loss_of(got, x, y))
    assert_same_update(got, want, start)


def _fsdp_worker(rank: int, world: int, init_file: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        'gloo', init_method=f'file://{init_file}', rank=rank,
        world_size=world)
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    cpu = torch.device('cpu')
    try:
        x, y = batch()
        half = slice(8 * rank, 8 * (rank + 1))
        result = {}
        # use_orig_params=True: sharded weights, norms summed over ranks
        model = bn_free_model()
        fsdp = FSDP(model, use_orig_params=True, device_id=cpu)
        result['shard_numels'] = [
            m.weight.numel() for m in model.modules()
            if isinstance(m, Adder2d)]
        wrapper = AdderOptimWrapper(optimizer=sgd(fsdp))
        with wrapper.optim_context(fsdp):
            loss = loss_of(fsdp, x[half], y[half])
        wrapper.update_params(loss)
        with FSDP.summon_full_params(fsdp):
            result['weights'] = [w.numpy() for w in adder_weights(model)]
        # the same, given the parameters without the model
        loss_of(fsdp, x[half], y[half]).backward()
        with pytest.raises(AdaptiveLRError) as err:
            rescale_adder_grads(list(fsdp.parameters()))
        result['no_model'] = str(err.value)
        # use_orig_params=False: the weights are flattened away
        flat = FSDP(bn_free_model(), use_orig_params=False, device_id=cpu)
        loss_of(flat, x[half], y[half]).backward()
        with pytest.raises(AdaptiveLRError) as err:
            rescale_adder_grads(flat)
        result['flat'] = str(err.value)
        with open(f'{out}.{rank}', 'wb') as f:
            pickle.dump(result, f)
        # both ranks done with every collective before either tears down
        # its process group (one rank leaving early aborts the other)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_fsdp(tmp_path):
    """Two gloo processes, one FSDP unit, each half of the batch. The
    first adder filter (162 weights) lies on rank 0, the second (216) is
    split between the ranks."""
    out = str(tmp_path / 'result')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        mp.start_processes(
            _fsdp_worker, args=(2, str(tmp_path / 'init'), out), nprocs=2,
            start_method='spawn')
    results = []
    for rank in range(2):
        with open(f'{out}.{rank}', 'rb') as f:
            results.append(pickle.load(f))
    # the second filter is split: the norm needs both ranks
    numels = [r['shard_numels'] for r in results]
    assert numels[0][1] > 0 and numels[1][1] > 0, numels
    assert numels[0][0] + numels[1][0] == 162

    start, (x, y) = bn_free_model(), batch()
    want = adder_weights(reference_step(start, x, y))
    for result in results:
        for got, w, s in zip(result['weights'], want, adder_weights(start)):
            torch.testing.assert_close(
                torch.from_numpy(got) - s, w - s, rtol=1e-5, atol=1e-6)
        assert "FSDP shards the weight of Adder2d(3, 6" in result['no_model']
        assert 'rescale_adder_grads(model)' in result['no_model']
        assert "'0' (Adder2d(3, 6" in result['flat']
        assert 'use_orig_params=True' in result['flat']


def test_lookup_finds_layers_by_module_path():
    from mmpkkd.models.layers.adder_lookup import find_adder_weights
    model = nn.Sequential(nn.Sequential(Adder2d(3, 8, 3)), nn.Conv2d(8, 8, 1))
    found = find_adder_weights(model.parameters(), model)
    assert [w.name.split(' ')[0] for w in found.weights] == ["'0.0'"]
    assert found.weights[0].param is model[0][0].weight
    assert not found.flattened and not found.unknown_shards
    # without the model: found among all adder layers of the process
    found = find_adder_weights(model.parameters())
    assert [w.param for w in found.weights] == [model[0][0].weight]


def test_eta_and_adaptive_lr_are_read_at_each_step():
    start, (x, y) = bn_free_model(), batch()
    model = copy.deepcopy(start)
    model[0].eta = 0.5
    model[1].adaptive_lr = False
    loss_of(model, x, y).backward()
    raw = model[1].weight.grad.clone()
    assert rescale_adder_grads(model) == 1
    g = model[0].weight.grad
    assert g.norm().item() == pytest.approx(0.5 * g.numel()**0.5, rel=1e-6)
    assert torch.equal(model[1].weight.grad, raw)


def test_tracked_layers_are_freed_with_their_model():
    """The process-wide tracking of adder layers holds them weakly."""
    model = bn_free_model()
    ref = weakref.ref(model[0])
    del model
    gc.collect()
    assert ref() is None
