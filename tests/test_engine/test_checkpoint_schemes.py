"""Every checkpoint name MMEngine accepts loads weights-only, or is refused.

No test uses the network: a file is put into a temporary torch.hub cache
(``TORCH_HOME``) under the name a download of its URL would get, which is
what MMEngine and torch.hub read without downloading. Downloads themselves
are tested with ``file://`` URLs.
"""
import os
import os.path as osp
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import urlparse

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmengine.runner import Runner
from mmengine.runner.checkpoint import (CheckpointLoader, _load_checkpoint,
                                        get_external_models, get_mmcls_models,
                                        get_torchvision_models)

from mmpkkd.apis import get_model, get_model_cfg
from mmpkkd.engine.checkpoint import (CheckpointError, load_checkpoint_file,
                                      safe_torch_load, schemes)
from mmpkkd.models import build_model

from conftest import REPO  # noqa: E402
ANN = osp.join(REPO, 'configs/ann/ann_resnet20_1xb64-15e_digits.py')
PKKD = osp.join(REPO, 'configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py')
URL = 'https://example.invalid/models/ann_r20-0123abcd.pth'


class Payload:
    """Unpickles to a call of os.system that creates ``marker``."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch.hub cache (``$TORCH_HOME/hub/checkpoints``) that no
    download may fill: the tests put the files there themselves."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.delenv('TORCH_HUB', raising=False)
    monkeypatch.setattr(torch.hub, '_hub_dir', None)

    def no_network(url, *args, **kwargs):
        raise AssertionError(f'tried to download {url}')

    monkeypatch.setattr(torch.hub, 'download_url_to_file', no_network)
    cache = tmp_path / 'torch' / 'hub' / 'checkpoints'
    cache.mkdir(parents=True)
    return cache


def cache_name(url: str) -> str:
    """The file name torch.hub gives a download of ``url``."""
    return osp.basename(urlparse(url).path)


def put_payload(cache, url: str, marker) -> None:
    torch.save({'state_dict': {'w': torch.ones(1)}, 'x': Payload(marker)},
               str(cache / cache_name(url)))


def put_weights(cache, url: str, state: dict) -> None:
    torch.save({'state_dict': state, 'meta': {'epoch': 3}},
               str(cache / cache_name(url)))


#: One name per scheme that resolves to a download, with its URL.
NAMED = [
    ('https', URL, URL),
    ('http', URL.replace('https', 'http'), URL.replace('https', 'http')),
    ('torchvision', 'torchvision://resnet18',
     lambda: get_torchvision_models()['resnet18']),
    ('modelzoo', 'modelzoo://resnet18',
     lambda: get_torchvision_models()['resnet18']),
    ('open-mmlab', 'open-mmlab://vgg16_caffe',
     lambda: get_external_models()['vgg16_caffe']),
    ('openmmlab', 'openmmlab://vgg16_caffe',
     lambda: get_external_models()['vgg16_caffe']),
    ('mmcls', 'mmcls://vgg11', lambda: get_mmcls_models()['vgg11']),
]


def url_of(url) -> str:
    return url() if callable(url) else url


def test_every_mmengine_scheme_is_ours():
    """Each scheme MMEngine registers (today's and any a new release adds)
    maps to a loader of ours that it knows; a scheme this project does not
    know fails here instead of loading with pickle."""
    registered = dict(CheckpointLoader._schemes)
    assert {'', 'http://', 'https://', 'pavi://', 'modelzoo://',
            'torchvision://', 'open-mmlab://', 'openmmlab://',
            'mmcls://'} <= set(registered)
    assert any('s3://' in p for p in registered)
    assert any('petrel://' in p for p in registered)
    for prefix, loader in registered.items():
        assert loader.__module__ == schemes.__name__, (prefix, loader)
        assert loader is not schemes.refuse_unknown_scheme, (
            f'MMEngine has a checkpoint scheme {prefix!r} that '
            'mmpkkd.engine.checkpoint.schemes does not know: add its '
            'weights-only loader to SCHEME_LOADERS')
    assert set(registered) == set(schemes.SCHEME_LOADERS)


def test_an_unknown_scheme_is_refused(tmp_path, monkeypatch):
    """A scheme registered with a pickle loader (as a new MMEngine might)
    is replaced by a refusal when the loaders are installed."""
    monkeypatch.setattr(CheckpointLoader, '_schemes',
                        dict(CheckpointLoader._schemes))
    marker = tmp_path / 'ran'
    evil = tmp_path / 'evil.pth'
    torch.save({'x': Payload(str(marker))}, str(evil))

    def pickle_loader(filename, map_location=None):
        return torch.load(str(evil), weights_only=False)

    CheckpointLoader.register_scheme('newscheme://', pickle_loader)
    schemes.register_checkpoint_loaders()
    with pytest.raises(CheckpointError, match='not supported'):
        _load_checkpoint('newscheme://model', 'cpu')
    assert not marker.exists()


@pytest.mark.parametrize('scheme, name, url', NAMED,
                         ids=[n[0] for n in NAMED])
def test_cached_pickle_payload_does_not_run(hub, tmp_path, scheme, name,
                                            url):
    marker = tmp_path / 'ran'
    put_payload(hub, url_of(url), marker)
    with pytest.raises(CheckpointError, match='Refused to load') as err:
        _load_checkpoint(name, 'cpu')  # MMEngine's CheckpointLoader route
    assert 'posix.system' in str(err.value)
    assert not marker.exists(), 'the payload ran'
    with pytest.raises(CheckpointError, match='Refused to load'):
        load_checkpoint_file(name)  # the tools' route
    assert not marker.exists()


@pytest.mark.parametrize('scheme, name, url', NAMED,
                         ids=[n[0] for n in NAMED])
def test_cached_weights_load(hub, scheme, name, url):
    weight = torch.arange(6.).view(2, 3)
    put_weights(hub, url_of(url), {'backbone.w': weight})
    loaded = _load_checkpoint(name, 'cpu')
    # mmcls:// keeps the backbone's weights without their prefix, as in
    # MMEngine
    key = 'w' if scheme == 'mmcls' else 'backbone.w'
    assert torch.equal(loaded['state_dict'][key], weight)


def test_unknown_model_name_is_refused_with_suggestions(hub):
    with pytest.raises(CheckpointError, match='Did you mean.*resnet18'):
        _load_checkpoint('torchvision://resnet1', 'cpu')


def test_download_lands_in_the_hub_cache_then_loads_weights_only(
        tmp_path, monkeypatch):
    """A URL that is not cached is downloaded (torch.hub's downloader, a
    file:// URL here) into the cache, then read weights-only."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.setattr(torch.hub, '_hub_dir', None)
    served = tmp_path / 'server'
    served.mkdir()
    torch.save({'state_dict': {'w': torch.full((2, ), 7.)}},
               str(served / 'good.pth'))
    marker = tmp_path / 'ran'
    torch.save({'x': Payload(str(marker))}, str(served / 'evil.pth'))
    cache = tmp_path / 'torch' / 'hub' / 'checkpoints'

    good = schemes.load_from_http(f'file://{served}/good.pth')
    assert torch.equal(good['state_dict']['w'], torch.full((2, ), 7.))
    assert (cache / 'good.pth').is_file()
    with pytest.raises(CheckpointError, match='Refused'):
        schemes.load_from_http(f'file://{served}/evil.pth')
    assert (cache / 'evil.pth').is_file() and not marker.exists()
    with pytest.raises(CheckpointError, match='Could not download'):
        schemes.load_from_http(f'file://{served}/absent.pth')


@pytest.mark.parametrize('name', [
    's3://bucket/model.pth', 'cluster:s3://bucket/model.pth',
    'petrel://bucket/model.pth'
])
def test_s3_and_petrel_bytes_load_weights_only(tmp_path, monkeypatch, name):
    marker = tmp_path / 'ran'
    files = {}
    for kind, obj in (('evil', {'x': Payload(str(marker))}),
                      ('good', {'state_dict': {'w': torch.ones(3)}})):
        torch.save(obj, str(tmp_path / kind))
        files[kind] = (tmp_path / kind).read_bytes()
    served = {'bytes': files['evil']}
    monkeypatch.setattr(schemes, '_read_remote',
                        lambda filename, backend: served['bytes'])
    with pytest.raises(CheckpointError, match='Refused'):
        _load_checkpoint(name, 'cpu')
    assert not marker.exists()
    served['bytes'] = files['good']
    assert torch.equal(_load_checkpoint(name, 'cpu')['state_dict']['w'],
                       torch.ones(3))


def test_pavi_is_refused_with_what_to_do():
    with pytest.raises(CheckpointError, match='Download the file with pavi'):
        _load_checkpoint('pavi://project/model.pth', 'cpu')


# ------------------------------------------------------------- the routes


class Tiny(BaseModule):

    def __init__(self, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.fc = nn.Linear(2, 2)


def test_init_cfg_pretrained_route(hub, tmp_path):
    marker = tmp_path / 'ran'
    put_payload(hub, URL, marker)
    model = Tiny(init_cfg=dict(type='Pretrained', checkpoint=URL))
    with pytest.raises(CheckpointError, match='Refused'):
        model.init_weights()
    assert not marker.exists()
    weights = Tiny().state_dict()
    put_weights(hub, URL, weights)
    model = Tiny(init_cfg=dict(type='Pretrained', checkpoint=URL))
    model.init_weights()
    assert torch.equal(model.fc.weight, weights['fc.weight'])


def test_teacher_ckpt_route(hub, tmp_path):
    marker = tmp_path / 'ran'
    put_payload(hub, URL, marker)
    cfg = get_model_cfg(PKKD)
    cfg['teacher_ckpt'] = URL
    model = build_model(cfg)
    with pytest.raises(CheckpointError, match='Refused'):
        model.init_weights()
    assert not marker.exists()


def test_get_model_route(hub, tmp_path):
    marker = tmp_path / 'ran'
    put_payload(hub, URL, marker)
    with pytest.raises(CheckpointError, match='Refused'):
        get_model(ANN, URL)
    assert not marker.exists()
    weights = get_model(ANN).state_dict()
    put_weights(hub, URL, weights)
    model = get_model(ANN, URL)
    for key, value in weights.items():
        assert torch.equal(model.state_dict()[key], value), key


def test_runner_load_from_and_resume_route(hub, tmp_path):
    """``load_from`` and ``resume`` of MMEngine's runner."""
    from mmengine.model import BaseModel

    class Model(BaseModel):

        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, *args, **kwargs):
            return {}

    marker = tmp_path / 'ran'
    put_payload(hub, URL, marker)
    runner = Runner(model=Model(), work_dir=str(tmp_path / 'work'),
                    experiment_name='scheme_route_test')
    with pytest.raises(CheckpointError, match='Refused'):
        runner.load_checkpoint(URL)
    with pytest.raises(CheckpointError, match='Refused'):
        runner.resume(URL)
    assert not marker.exists()


# ------------------------------------------------- devices of checkpoints


@contextmanager
def saved_as_on(device: str) -> Iterator[None]:
    """``torch.save`` records every CPU tensor as being on ``device``
    (``'cuda:0'``...), as a checkpoint saved there records them."""
    registry = torch.serialization._package_registry
    entry = (0, lambda storage: device
             if storage.device.type == 'cpu' else None, lambda obj, loc: None)
    registry.insert(0, entry)
    try:
        yield
    finally:
        registry.remove(entry)


@pytest.mark.parametrize('device', ['cuda:0', 'cuda:3'])
def test_a_gpu_checkpoint_loads_on_this_machine(tmp_path, device):
    """Saved on a GPU (or on GPU 3 of a larger machine): the tensors come
    to the CPU by default, and asking for a device that is absent says
    what to do instead of calling the file corrupt."""
    path = str(tmp_path / 'gpu.pth')
    weight = torch.arange(4.)
    with saved_as_on(device):
        torch.save({'state_dict': {'w': weight}}, path)
    if not torch.cuda.is_available():  # what plain torch.load does
        with pytest.raises(RuntimeError, match='CUDA'):
            torch.load(path, weights_only=True)
    loaded = safe_torch_load(path)
    assert loaded['state_dict']['w'].device.type == 'cpu'
    assert torch.equal(loaded['state_dict']['w'], weight)
    assert torch.equal(_load_checkpoint(path)['state_dict']['w'], weight)
    if not torch.cuda.is_available():
        with pytest.raises(CheckpointError, match="map_location='cpu'"):
            safe_torch_load(path, map_location=lambda s, loc: s.cuda())


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_a_cpu_checkpoint_loads_onto_the_gpu(tmp_path):
    path = str(tmp_path / 'cpu.pth')
    torch.save({'state_dict': {'w': torch.ones(2)}}, path)
    loaded = safe_torch_load(path, map_location='cuda')
    assert loaded['state_dict']['w'].is_cuda
