"""Truncated or corrupt data files are named, with how to restore them."""
import os.path as osp
import pickle
import struct

import numpy as np
import pytest
from mmengine.registry import DefaultScope

from mmpkkd.datasets import (DataFileError, FashionMNIST, OfflineCIFAR10,
                             idx_shape, load_cifar_batch)
from mmpkkd.registry import DATASETS
from mmpkkd.utils import UserError

from conftest import write_cifar, write_fashion_mnist  # noqa: E402

IMAGES = 'train-images-idx3-ubyte'
LABELS = 'train-labels-idx1-ubyte'


@pytest.fixture
def fmnist(tmp_path):
    return write_fashion_mnist(str(tmp_path / 'fmnist'), num_train=40)


def build(root: str, test_mode: bool = False):
    return FashionMNIST(root, split='test' if test_mode else 'train',
                        test_mode=test_mode, download=False)


def test_intact_files_load_and_configs_get_the_checked_reader(fmnist):
    assert idx_shape(osp.join(fmnist, IMAGES), 3) == (40, 28, 28)
    assert idx_shape(osp.join(fmnist, LABELS), 1) == (40, )
    assert len(build(fmnist)) == 40
    with DefaultScope.overwrite_default_scope('mmpkkd'):
        assert DATASETS.get('FashionMNIST') is FashionMNIST


def test_truncated_and_overlong_files(fmnist):
    path = osp.join(fmnist, IMAGES)
    size = osp.getsize(path)
    with open(path, 'r+b') as f:
        f.truncate(size - 1)
    with pytest.raises(DataFileError) as err:
        build(fmnist)
    # 40 x 28 x 28 bytes after a 16-byte header
    assert f'{path} is truncated: {size - 1:,} bytes where its header ' \
        f'(40 x 28 x 28) needs {16 + 40 * 28 * 28:,}' in str(err.value)
    assert 'prepare_fashion_mnist.py' in str(err.value)
    assert isinstance(err.value, (UserError, RuntimeError))
    with open(path, 'ab') as f:
        f.write(b'\0\0')
    with pytest.raises(DataFileError, match='longer than its header'):
        build(fmnist)


@pytest.mark.parametrize('header', [b'\x00\x00\x08\x01', b'\x1f\x8b\x08\x00',
                                    b'\x00\x00\x0d\x03', b'\x00\x00'])
def test_wrong_header(fmnist, header):
    """One dimension instead of three, a gzip file, floats, a stub."""
    path = osp.join(fmnist, IMAGES)
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(header + (data[4:] if len(header) == 4 else b''))
    with pytest.raises(DataFileError,
                       match='not a 3-dimensional IDX file of bytes'):
        build(fmnist)


def test_images_and_labels_of_different_counts(fmnist):
    path = osp.join(fmnist, LABELS)
    labels = open(path, 'rb').read()[8:]
    with open(path, 'wb') as f:
        f.write(b'\x00\x00\x08\x01' + struct.pack('>I', 39) + labels[:39])
    with pytest.raises(DataFileError,
                       match='40 images but .* 39 labels'):
        build(fmnist)


# --------------------------------------------------------------- CIFAR


@pytest.fixture
def cifar(tmp_path):
    root = write_cifar(str(tmp_path / 'cifar10'), 10)
    return root, osp.join(root, 'cifar-10-batches-py', 'data_batch_1')


def test_truncated_cifar_batch(cifar):
    root, batch = cifar
    with open(batch, 'r+b') as f:
        f.truncate(osp.getsize(batch) // 2)
    with pytest.raises(DataFileError,
                       match=f'{batch} is truncated or corrupt'):
        load_cifar_batch(batch)
    with pytest.raises(DataFileError, match='data_batch_1 is truncated'):
        OfflineCIFAR10(root, split='train', verify_md5=False)


def test_cifar_batch_of_the_wrong_content(cifar):
    root, batch = cifar
    with open(batch, 'wb') as f:
        pickle.dump([1, 2, 3], f)
    with pytest.raises(DataFileError, match='holds a list, not the dict'):
        load_cifar_batch(batch)
    with open(batch, 'wb') as f:
        pickle.dump({'data': np.zeros((2, 100), np.uint8),
                     'labels': [0, 1]}, f)
    with pytest.raises(DataFileError,
                       match='not a whole number of 3072-byte images'):
        OfflineCIFAR10(root, split='train', verify_md5=False)
