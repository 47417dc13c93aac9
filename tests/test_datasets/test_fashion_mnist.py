"""Fashion-MNIST: the preparation tool, the splits and the three configs,
on gzipped IDX files the tests write (CI has no Fashion-MNIST).

The split test writes files of the real size (60,000 training and 10,000
test images) in which every image carries its file and position in its
pixels, so the positions each split reads are decoded from the images
themselves rather than taken from the code that selects them.
"""
import gzip
import json
import os
import os.path as osp
import re
import shutil
import struct
from typing import Dict, List, Tuple

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmpkkd.engine import safe_torch_load
from mmpkkd.registry import DATASETS
from mmpkkd.utils import UserError
from tools.dataset_converters import prepare_fashion_mnist as prepare_tool
from tools.train import main as train_main

# mmpretrain's MNIST reader calls np.array on a tensor once per image
pytestmark = pytest.mark.filterwarnings(
    'ignore:__array__ implementation:DeprecationWarning')

from conftest import REPO  # noqa: E402
CONFIGS = {
    method: f'configs/{method}/{method}_resnet20_1xb128-15e_fashionmnist.py'
    for method in ('cnn', 'ann', 'pkkd')
}
N_TRAIN, N_VAL, N_TEST = 60000, 10000, 10000
TRAIN_MARK, TEST_MARK = 0, 1  # pixel (0, 2) of every image: its file


def write_idx_gz(path: str, array: np.ndarray) -> None:
    """A gzipped IDX file of unsigned bytes, written from the format's
    definition: two zero bytes, type 0x08, the number of dimensions, each
    dimension as a big-endian uint32, then the data in C order."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b''.join(
        struct.pack('>I', n) for n in array.shape)
    with gzip.open(path, 'wb', compresslevel=1) as f:
        f.write(header + array.tobytes())


def coded_images(n: int, mark: int) -> np.ndarray:
    """``n`` 28x28 images whose pixels (0, 0), (0, 1) hold the image's
    position (high, low byte) and pixel (0, 2) the file mark."""
    images = np.zeros((n, 28, 28), np.uint8)
    positions = np.arange(n)
    images[:, 0, 0] = positions >> 8
    images[:, 0, 1] = positions & 0xFF
    images[:, 0, 2] = mark
    return images


def decode(img: np.ndarray) -> Tuple[int, int]:
    """(file mark, position) of a :func:`coded_images` image."""
    return int(img[0, 2]), int(img[0, 0]) * 256 + int(img[0, 1])


def train_labels(n: int) -> np.ndarray:
    return np.arange(n) % 10


def t10k_labels(n: int) -> np.ndarray:
    return (np.arange(n) * 7 + 3) % 10


def write_archives(src: str, train_images: np.ndarray,
                   test_images: np.ndarray) -> str:
    """The four archives of the release, under its file names."""
    os.makedirs(src, exist_ok=True)
    write_idx_gz(osp.join(src, 'train-images-idx3-ubyte.gz'), train_images)
    write_idx_gz(osp.join(src, 'train-labels-idx1-ubyte.gz'),
                 train_labels(len(train_images)))
    write_idx_gz(osp.join(src, 't10k-images-idx3-ubyte.gz'), test_images)
    write_idx_gz(osp.join(src, 't10k-labels-idx1-ubyte.gz'),
                 t10k_labels(len(test_images)))
    return src


@pytest.fixture(scope='module')
def full_size_root(tmp_path_factory) -> str:
    """Release-sized archives with position-coded images, prepared by the
    tool into a data root."""
    base = tmp_path_factory.mktemp('fm_full')
    src = write_archives(str(base / 'src'), coded_images(N_TRAIN, TRAIN_MARK),
                         coded_images(N_TEST, TEST_MARK))
    root = str(base / 'data')
    prepare_tool.main(['--src', src, '--out', root])
    return root


@pytest.fixture(scope='module')
def tiny_root(tmp_path_factory) -> str:
    """40 training and 20 test images with class-dependent brightness."""
    rng = np.random.default_rng(0)
    base = tmp_path_factory.mktemp('fm_tiny')

    def images(labels):
        noise = rng.integers(0, 40, (len(labels), 28, 28))
        return (noise + labels[:, None, None] * 20).astype(np.uint8)

    src = write_archives(str(base / 'src'), images(train_labels(40)),
                         images(t10k_labels(20)))
    root = str(base / 'data')
    prepare_tool.main(['--src', src, '--out', root])
    return root


def with_data_root(cfg: Config, root: str) -> Config:
    """The config reading its three splits from ``root``."""
    cfg.train_dataloader.dataset.dataset.data_root = root
    cfg.val_dataloader.dataset.data_root = root
    cfg.test_dataloader.dataset.data_root = root
    return cfg


def data_root_options(root: str) -> List[str]:
    return [
        f'train_dataloader.dataset.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
    ]


def positions(dataset) -> List[Tuple[int, int]]:
    return [
        decode(dataset.get_data_info(i)['img']) for i in range(len(dataset))
    ]


# ---------------------------------------------------------------- the tool


def test_prepare_unpacks_the_archives_byte_for_byte(tmp_path):
    train = coded_images(30, TRAIN_MARK)
    test = coded_images(10, TEST_MARK)
    src = write_archives(str(tmp_path / 'src'), train, test)
    out = str(tmp_path / 'out')
    report = prepare_tool.main(['--src', src, '--out', out])
    assert sorted(os.listdir(out)) == sorted(
        name[:-3] for name in prepare_tool.FILES)
    for name in prepare_tool.FILES:
        with gzip.open(osp.join(src, name)) as f:
            expected = f.read()
        with open(osp.join(out, name[:-3]), 'rb') as f:
            assert f.read() == expected, name
    assert 'train: 30 images of 28x28' in report
    assert 't10k: 10 images of 28x28' in report
    assert any('not the official release' in line for line in report)
    # a second run finds the same files and leaves them alone
    before = os.stat(osp.join(out, 'train-images-idx3-ubyte')).st_mtime_ns
    prepare_tool.main(['--src', src, '--out', out])
    after = os.stat(osp.join(out, 'train-images-idx3-ubyte')).st_mtime_ns
    assert before == after


def test_prepare_refuses_broken_input(tmp_path):
    src = write_archives(str(tmp_path / 'src'), coded_images(6, 0),
                         coded_images(4, 1))
    out = str(tmp_path / 'out')
    # one image fewer than labels
    write_idx_gz(osp.join(src, 't10k-images-idx3-ubyte.gz'),
                 coded_images(3, 1))
    with pytest.raises(UserError, match='3 images but 4 labels'):
        prepare_tool.main(['--src', src, '--out', out])
    # an IDX file cut short
    with gzip.open(osp.join(src, 't10k-images-idx3-ubyte.gz'), 'wb') as f:
        f.write(bytes([0, 0, 8, 3]) + struct.pack('>3I', 4, 28, 28) +
                bytes(100))
    with pytest.raises(UserError, match='truncated') as err:
        prepare_tool.main(['--src', src, '--out', out])
    assert err.value.exit_code == 2
    # a missing archive names the Debian package
    os.remove(osp.join(src, 't10k-images-idx3-ubyte.gz'))
    with pytest.raises(UserError, match='dataset-fashion-mnist') as err:
        prepare_tool.main(['--src', src, '--out', out])
    assert err.value.exit_code == 2
    assert not osp.exists(out)


# -------------------------------------------------------------- the splits


def test_splits_are_disjoint_complete_and_test_is_the_test_file(
        full_size_root):
    init_default_scope('mmpkkd')
    cfg = with_data_root(Config.fromfile(osp.join(REPO, CONFIGS['pkkd'])),
                         full_size_root)
    train = DATASETS.build(cfg.train_dataloader.dataset)
    val = DATASETS.build(cfg.val_dataloader.dataset)
    test = DATASETS.build(cfg.test_dataloader.dataset)
    train_pos, val_pos, test_pos = (positions(ds)
                                    for ds in (train, val, test))

    assert train_pos == [(TRAIN_MARK, i) for i in range(N_TRAIN - N_VAL)]
    assert val_pos == [(TRAIN_MARK, i) for i in range(N_TRAIN - N_VAL,
                                                      N_TRAIN)]
    assert not set(train_pos) & set(val_pos)
    assert set(train_pos) | set(val_pos) == {(TRAIN_MARK, i)
                                             for i in range(N_TRAIN)}
    assert test_pos == [(TEST_MARK, i) for i in range(N_TEST)]
    # labels travel with their images
    for ds, labels in ((val, train_labels(N_TRAIN)),
                       (test, t10k_labels(N_TEST))):
        for i in (0, 1, len(ds) - 1):
            info = ds.get_data_info(i)
            assert int(info['gt_label']) == labels[decode(info['img'])[1]]
    # the proxy budget: the first 10,000 training images, still apart from
    # the validation images
    cfg.train_dataloader.dataset.dataset.indices = 10000
    proxy = positions(DATASETS.build(cfg.train_dataloader.dataset))
    assert proxy == [(TRAIN_MARK, i) for i in range(10000)]


def test_the_three_configs_share_one_data_setup():
    cfgs = {m: Config.fromfile(osp.join(REPO, c)) for m, c in CONFIGS.items()}
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader',
                'data_preprocessor', 'train_cfg', 'param_scheduler'):
        values = [cfgs[m][key] for m in CONFIGS]
        assert values[0] == values[1] == values[2], key
    assert cfgs['cnn'].train_dataloader.sampler.type == 'SeededSampler'
    assert cfgs['cnn'].train_dataloader.dataset.type == 'SeededDataset'
    assert cfgs['cnn'].train_cfg.max_epochs == 15
    assert cfgs['cnn'].train_dataloader.batch_size == 128


# ------------------------------------------------------ training, resuming


def scalars(work_dir: str) -> Dict[str, List[dict]]:
    """Training and validation lines of every run in a work dir."""
    out = {'train': [], 'val': []}
    for stamp in sorted(os.listdir(work_dir)):
        path = osp.join(work_dir, stamp, 'vis_data', 'scalars.json')
        if osp.isfile(path):
            for line in open(path):
                rec = json.loads(line)
                out['train' if 'loss' in rec else 'val'].append(rec)
    return out


def train(config: str, work_dir: str, root: str, *extra: str,
          epochs: int = 1, train_images: int = 8) -> None:
    """Train with batches of 8 on the tiny data: ``train_images / 8``
    iterations per epoch, validation on 8 images every epoch."""
    train_main([
        osp.join(REPO, config), '--work-dir', work_dir, *extra,
        '--cfg-options', *data_root_options(root),
        f'train_dataloader.dataset.dataset.indices={train_images}',
        'val_dataloader.dataset.indices=-8', 'train_dataloader.batch_size=8',
        'val_dataloader.batch_size=8', f'train_cfg.max_epochs={epochs}',
        'train_cfg.val_interval=1', 'default_hooks.logger.interval=1'
    ])


@pytest.mark.parametrize('method', ['cnn', 'ann', 'pkkd'])
def test_config_trains_one_iteration(method, tiny_root, tmp_path):
    work_dir = str(tmp_path / method)
    train(CONFIGS[method], work_dir, tiny_root)
    logs = scalars(work_dir)
    assert len(logs['train']) == 1
    assert np.isfinite(logs['train'][0]['loss'])
    assert len(logs['val']) == 1 and 'accuracy/top1' in logs['val'][0]
    if method == 'pkkd':
        assert 'teacher/accuracy/top1' in logs['val'][0]
        assert 'student.loss_mid' in logs['train'][0]
    state = safe_torch_load(osp.join(work_dir, 'epoch_1.pth'))['state_dict']
    stems = [k for k in state if k.endswith('backbone.conv1.weight')]
    assert len(stems) == (2 if method == 'pkkd' else 1)
    for key in stems:  # one input channel
        assert state[key].shape == (16, 1, 3, 3), key


def test_resume_continues_exactly(tiny_root, tmp_path):
    """Killed after epoch 1 and resumed: the same epoch-2 losses and final
    weights as the uninterrupted run (augmentation seeds from SeededDataset
    and SeededSampler)."""
    full, resumed = str(tmp_path / 'full'), str(tmp_path / 'resumed')
    train(CONFIGS['cnn'], full, tiny_root, epochs=2, train_images=16)
    os.makedirs(resumed)
    shutil.copy(osp.join(full, 'epoch_1.pth'), resumed)  # the crash point
    train(CONFIGS['cnn'], resumed, tiny_root, '--resume',
          osp.join(resumed, 'epoch_1.pth'), epochs=2, train_images=16)

    def epoch2(work_dir):
        return {(r['epoch'], r['iter']): r['loss']
                for r in scalars(work_dir)['train'] if r['epoch'] == 2}

    assert len(epoch2(full)) == 2 and epoch2(resumed) == epoch2(full)
    a = safe_torch_load(osp.join(full, 'epoch_2.pth'))['state_dict']
    b = safe_torch_load(osp.join(resumed, 'epoch_2.pth'))['state_dict']
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# -------------------------------------------------------------------- docs


def test_docs_name_existing_configs_and_tools():
    with open(osp.join(REPO, 'docs', 'user_guides',
                       'training_and_testing.md')) as f:
        text = f.read()
    names = set(re.findall(r'(?:configs|tools)/[\w/.-]+\.(?:py|yaml)', text))
    assert set(CONFIGS.values()) <= names
    for name in names:
        assert osp.isfile(osp.join(REPO, name)), name
