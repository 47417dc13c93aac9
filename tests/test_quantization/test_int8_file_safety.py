"""Int8 files are data: crafted files run nothing, import nothing, allocate
nothing unbounded, and corrupted ones are detected.

Each crafted file carries a valid checksum (an attacker can compute one),
so the refusals below come from the content checks, not from the hash. A
payload that ran would create a marker file; it must never appear.

Files are format 3 (safetensors) unless a test says version 2 (the older
``torch.save``'d dict, still read, with a warning).
"""
import json
import os
import os.path as osp
import pickle
import struct
import sys
import warnings

import pytest
import torch
from mmengine.config import Config

from mmpkkd.apis import get_model, get_model_cfg
from mmpkkd.quantization import (AllocationBudget, AllocationError,
                                 Int8FileError, Int8FormatWarning,
                                 check_matches_config, int8_layers,
                                 load_int8, quantize_int8, read_int8,
                                 resave_int8, save_int8)
from mmpkkd.quantization.serialization import (checksum, read_int8_dict,
                                               write_int8_dict)

from conftest import REPO  # noqa: E402
ANN = osp.join(REPO, 'configs/ann/ann_resnet20_1xb64-15e_digits.py')


@pytest.fixture(scope='module')
def int8_file(tmp_path_factory):
    """A genuine int8 ANN ResNet-20 (digits config), untrained."""
    torch.manual_seed(0)
    net = get_model(ANN)
    qnet = quantize_int8(net, [torch.randn(4, 3, 32, 32)], max_samples=4,
                         clip_levels=(1.0, ))
    path = str(tmp_path_factory.mktemp('int8') / 'ann_int8.safetensors')
    save_int8(qnet, path, get_model_cfg(ANN), meta={'config': ANN})
    return path


def craft(src: str, dst: str, edit, rehash: bool = True) -> str:
    """Copy the int8 file ``src`` to ``dst`` with ``edit(data)`` applied
    and (by default) a checksum that matches the edited content."""
    data = read_int8_dict(src)
    edit(data)
    if rehash:
        data['sha256'] = checksum(data)
    write_int8_dict(data, dst)
    return dst


def craft_v2(src: str, dst: str, edit=None, rehash: bool = True) -> str:
    """``src`` as a version 2 file (``torch.save``'d dict), edited."""
    data = dict(read_int8_dict(src), version=2)
    if edit is not None:
        edit(data)
    if rehash:
        data['sha256'] = checksum(data)
    torch.save(data, dst)
    return dst


def safetensors_header(path: str) -> dict:
    """The JSON header of a safetensors file, parsed by hand: 8 bytes of
    little-endian length, then that many bytes of JSON."""
    with open(path, 'rb') as f:
        (length, ) = struct.unpack('<Q', f.read(8))
        return json.loads(f.read(length))


def payload(marker: str) -> dict:
    return {'type': 'os.system', 'command': f'touch {marker}'}


@pytest.fixture
def evil_modules(tmp_path, monkeypatch):
    """A module and a package that create the marker when imported."""
    marker = tmp_path / 'imported'
    code = f'open({str(marker)!r}, "w").close()\n'
    (tmp_path / 'mmpkkd_probe_module.py').write_text(code)
    (tmp_path / 'mmpkkd_probe_scope').mkdir()
    (tmp_path / 'mmpkkd_probe_scope' / '__init__.py').write_text('')
    (tmp_path / 'mmpkkd_probe_scope' / 'registry.py').write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield marker
    for name in ('mmpkkd_probe_module', 'mmpkkd_probe_scope',
                 'mmpkkd_probe_scope.registry'):
        sys.modules.pop(name, None)


def test_genuine_file_loads_and_matches_its_config(int8_file):
    model = load_int8(int8_file)
    assert model(torch.randn(2, 3, 32, 32), mode='tensor').shape == (2, 10)
    model = get_model(ANN, int8_file)  # built from the user's config
    assert model(torch.randn(1, 3, 32, 32), mode='tensor').shape == (1, 10)


def test_format_3_is_safetensors_with_json_metadata(int8_file):
    header = safetensors_header(int8_file)
    meta = header.pop('__metadata__')
    assert sorted(meta) == sorted(['format', 'version', 'model_cfg',
                                   'int8_layers', 'meta', 'sha256'])
    assert (meta['format'], meta['version']) == ('mmpkkd-int8', '3')
    assert json.loads(meta['model_cfg'])['backbone']['depth'] == 20
    assert json.loads(meta['meta']) == {'config': ANN}
    layers = json.loads(meta['int8_layers'])
    assert len(layers) == 20 and all(v is not None for v in layers.values())
    # every tensor of the model is a safetensors tensor, int8 codes as I8
    model = load_int8(int8_file)
    assert set(header) == set(model.state_dict())
    assert {header[k]['dtype'] for k in header if 'weight_int8' in k} == \
        {'I8'}
    assert len(meta['sha256']) == 64


def test_format_3_loads_without_any_unpickling(int8_file, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError('an int8 file was unpickled')

    monkeypatch.setattr(torch, 'load', refuse)
    monkeypatch.setattr(pickle, 'loads', refuse)
    monkeypatch.setattr(pickle, 'load', refuse)
    monkeypatch.setattr(pickle, 'Unpickler', refuse)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # no warning for the current format
        model = load_int8(int8_file)
        assert int8_layers(get_model(ANN, int8_file)) == int8_layers(model)


def test_version_2_loads_with_a_note_to_resave(int8_file, tmp_path):
    old = craft_v2(int8_file, str(tmp_path / 'v2.pth'))
    x = torch.randn(2, 3, 32, 32)
    with pytest.warns(Int8FormatWarning, match='re-save it as version 3'):
        model = load_int8(old)
    with pytest.warns(Int8FormatWarning, match='resave_int8'):
        get_model(ANN, old)
    with torch.no_grad():
        assert torch.equal(model(x, mode='tensor'),
                           load_int8(int8_file)(x, mode='tensor'))
    new = str(tmp_path / 'v3.safetensors')
    resave_int8(old, new)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        data = read_int8(new)
    assert data['version'] == 3
    assert data['sha256'] == read_int8(int8_file)['sha256']  # same content


def test_version_2_goes_through_the_same_checks(int8_file, tmp_path):
    def flip(data):
        name = next(k for k in data['state_dict'] if 'weight_int8' in k)
        data['state_dict'][name].view(-1)[0] ^= 1

    flipped = craft_v2(int8_file, str(tmp_path / 'flip.pth'), flip,
                       rehash=False)
    with pytest.raises(Int8FileError, match='checksum mismatch'):
        load_int8(flipped)
    marker = str(tmp_path / 'ran')
    evil = craft_v2(int8_file, str(tmp_path / 'evil.pth'),
                    lambda d: d['model_cfg'].update(backbone=payload(marker)))
    with pytest.raises(Int8FileError, match='os.system'):
        load_int8(evil)
    assert not osp.exists(marker)


def test_torch_file_claiming_version_3_is_refused(int8_file, tmp_path):
    data = dict(read_int8_dict(int8_file))
    path = str(tmp_path / 'v3.pth')
    torch.save(data, path)
    with pytest.raises(Int8FileError, match='safetensors only'):
        load_int8(path)


def test_other_or_broken_safetensors_files_are_refused(int8_file, tmp_path):
    from safetensors.torch import save_file
    other = str(tmp_path / 'other.safetensors')
    save_file({'w': torch.zeros(2)}, other, metadata={'format': 'pt'})
    with pytest.raises(Int8FileError, match='not an mmpkkd int8 model'):
        load_int8(other)
    with pytest.raises(Int8FileError, match='not an mmpkkd int8 model'):
        get_model(ANN, other)
    cut = tmp_path / 'cut.safetensors'
    with open(int8_file, 'rb') as f:
        cut.write_bytes(f.read()[:-100])
    with pytest.raises(Int8FileError, match='truncated or corrupt'):
        load_int8(str(cut))


@pytest.mark.parametrize('where', ['top', 'backbone', 'head.loss', 'list'])
def test_os_system_anywhere_is_refused_unrun(int8_file, tmp_path, where):
    marker = str(tmp_path / 'ran')

    def edit(data):
        cfg = data['model_cfg']
        if where == 'top':
            data['model_cfg'] = payload(marker)
        elif where == 'backbone':
            cfg['backbone'] = payload(marker)
        elif where == 'head.loss':
            cfg['head']['loss'] = payload(marker)
        else:
            cfg['backbone']['plugins'] = [{'cfg': payload(marker)}]

    path = craft(int8_file, str(tmp_path / 'evil.pth'), edit)
    with pytest.raises(Int8FileError, match='os.system|not one of'):
        load_int8(path)
    assert not osp.exists(marker)


def test_old_loader_would_have_run_the_nested_payload(int8_file, tmp_path):
    """The crafted file is a real attack: building its model_cfg as the
    previous loader did runs the command."""
    marker = str(tmp_path / 'ran')
    path = craft(int8_file, str(tmp_path / 'evil.pth'),
                 lambda d: d['model_cfg'].update(backbone=payload(marker)))
    data = read_int8_dict(path)
    try:  # what load_int8 used to do: build the file's config unchecked
        get_model(Config(dict(model=data['model_cfg'])))
    except Exception:  # noqa: BLE001 - the command runs before any error
        pass
    assert osp.exists(marker)


def test_unregistered_bare_name_and_scope_import_nothing(
        int8_file, tmp_path, evil_modules):
    bare = craft(int8_file, str(tmp_path / 'bare.pth'),
                 lambda d: d['model_cfg']['neck'].update(
                     type='mmpkkd_probe_module'))
    with pytest.raises(Int8FileError, match='not a registered'):
        load_int8(bare)
    scoped = craft(int8_file, str(tmp_path / 'scope.pth'),
                   lambda d: d['model_cfg']['backbone'].update(
                       _scope_='mmpkkd_probe_scope'))
    with pytest.raises(Int8FileError, match='_scope_'):
        load_int8(scoped)
    assert not evil_modules.exists()


@pytest.mark.parametrize('kind', ['TimmClassifier', 'Pretrained'])
def test_types_that_fetch_files_are_refused(int8_file, tmp_path, kind):
    def edit(data):
        if kind == 'Pretrained':
            data['model_cfg']['backbone']['init_cfg'] = dict(
                type='Pretrained', checkpoint='http://example.com/x.pth')
        else:
            data['model_cfg']['backbone'] = dict(type=kind)

    path = craft(int8_file, str(tmp_path / 'fetch.pth'), edit)
    with pytest.raises(Int8FileError, match=kind):
        load_int8(path)


def test_oversized_layer_is_refused_before_allocation(int8_file, tmp_path):
    path = craft(int8_file, str(tmp_path / 'huge.pth'),
                 lambda d: d['model_cfg']['head'].update(
                     num_classes=10**12))
    with pytest.raises(AllocationError, match='would allocate'):
        load_int8(path)


def test_expanded_tensor_claiming_a_huge_shape_is_refused(
        int8_file, tmp_path):
    def edit(data):
        data['state_dict']['head.fc.weight'] = torch.zeros(1).expand(
            10**6, 10**6)

    # version 2: saving writes the one stored element; loading gets the
    # huge view
    path = craft_v2(int8_file, str(tmp_path / 'view.pth'), edit,
                    rehash=False)
    assert os.path.getsize(path) < 10**7
    with pytest.raises(Int8FileError, match='expanded or oversized'):
        load_int8(path)


def test_safetensors_header_claiming_a_huge_shape_is_refused(
        int8_file, tmp_path):
    header = safetensors_header(int8_file)
    with open(int8_file, 'rb') as f:
        (length, ) = struct.unpack('<Q', f.read(8))
        f.seek(8 + length)
        body = f.read()
    entry = header['head.fc.weight']
    entry['shape'] = [10**6, 10**6]  # its bytes stay those of 64 x 10
    text = json.dumps(header).encode()
    path = tmp_path / 'huge.safetensors'
    path.write_bytes(struct.pack('<Q', len(text)) + text + body)
    with pytest.raises(Int8FileError, match='truncated or corrupt'):
        load_int8(str(path))


def test_flipped_weight_byte_fails_the_checksum(int8_file, tmp_path):
    def edit(data):
        name = next(k for k in data['state_dict'] if 'weight_int8' in k)
        data['state_dict'][name].view(-1)[0] ^= 1

    path = craft(int8_file, str(tmp_path / 'flip.safetensors'), edit,
                 rehash=False)
    with pytest.raises(Int8FileError, match='checksum mismatch'):
        load_int8(path)


def test_version_1_files_without_checksum_are_refused(int8_file, tmp_path):
    def edit(data):
        data['version'] = 1
        del data['sha256']

    path = craft_v2(int8_file, str(tmp_path / 'v1.pth'), edit, rehash=False)
    with pytest.raises(Int8FileError, match='without a checksum'):
        load_int8(path)


def test_model_of_another_config_is_refused(int8_file):
    data = read_int8(int8_file)
    cfg = Config.fromfile(ANN)
    cfg.model.backbone.depth = 32
    with pytest.raises(Int8FileError, match=r'backbone\.depth: 20 vs 32'):
        check_matches_config(data, get_model_cfg(cfg), int8_file)
    # training-only settings do not count as another model
    cfg = Config.fromfile(ANN)
    cfg.model.head.loss = dict(type='LabelSmoothLoss', label_smooth_val=0.1)
    check_matches_config(data, get_model_cfg(cfg), int8_file)


def test_allocation_budget_counts_factory_calls():
    with AllocationBudget(1 << 20) as budget:
        torch.nn.Linear(100, 100)
    assert budget.used == (100 * 100 + 100) * 4
    with pytest.raises(AllocationError):
        with AllocationBudget(1 << 20):
            torch.zeros(1 << 19, dtype=torch.float32)
