"""Shared fixtures: tiny data sets in the real on-disk formats."""
import os
import os.path as osp
import pickle
import sys

import numpy as np
import pytest

TESTS = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(TESTS)
if REPO not in sys.path:  # tests import tools/ helpers from the checkout
    sys.path.insert(0, REPO)
# Test files live in folders that mirror the package (tests/test_ops/, ...);
# they import this file's helpers as ``from conftest import REPO``.
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

# Without a GPU the Triton kernels run on CPU tensors through Triton's
# interpreter; it must be chosen before triton is first imported.
if 'TRITON_INTERPRET' not in os.environ:
    import torch
    if not torch.cuda.is_available():
        os.environ['TRITON_INTERPRET'] = '1'

import mmpkkd  # noqa: E402,F401  (registers modules)


def tool_path(name: str) -> str:
    """``tools/<group>/<name>`` of a command-line tool, relative to REPO
    (the tools are grouped as mmpretrain's: analysis_tools, benchmarks,
    visualization, deployment, ...)."""
    import glob
    found = glob.glob(osp.join(REPO, 'tools', '*', name))
    assert len(found) == 1, f'{name}: {found}'
    return osp.relpath(found[0], REPO)


@pytest.fixture
def mmpkkd_scope():
    """Build in scope 'mmpkkd'; use as
    ``pytestmark = pytest.mark.usefixtures('mmpkkd_scope')``."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpkkd'):
        yield


def write_cifar(root: str, num_classes: int = 10, per_batch: int = 8,
                seed: int = 0) -> str:
    """Write a tiny CIFAR-10/100 in the official ``*-py`` pickle layout."""
    rng = np.random.RandomState(seed)
    if num_classes == 10:
        folder = osp.join(root, 'cifar-10-batches-py')
        files = [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']
        label_key, meta = 'labels', ('batches.meta', 'label_names')
    else:
        folder = osp.join(root, 'cifar-100-python')
        files = ['train', 'test']
        label_key, meta = 'fine_labels', ('meta', 'fine_label_names')
    os.makedirs(folder, exist_ok=True)
    for name in files:
        labels = rng.randint(0, num_classes, per_batch).tolist()
        # class-dependent brightness so a network can learn something
        data = (rng.randint(0, 64, (per_batch, 3 * 32 * 32)) +
                np.asarray(labels)[:, None] * (180 // num_classes)).astype(
                    np.uint8)
        with open(osp.join(folder, name), 'wb') as f:
            pickle.dump({'data': data, label_key: labels}, f)
    with open(osp.join(folder, meta[0]), 'wb') as f:
        pickle.dump({meta[1]: [f'c{i}' for i in range(num_classes)]}, f)
    return root


@pytest.fixture
def cifar10_root(tmp_path):
    return write_cifar(str(tmp_path / 'cifar10'), 10)


@pytest.fixture
def cifar100_root(tmp_path):
    return write_cifar(str(tmp_path / 'cifar100'), 100, per_batch=16)


def write_imagenet(root: str, num_images: int = 4, size: int = 40) -> str:
    """Write a tiny ImageNet: JPEG folders plus ``meta/{train,val}.txt``."""
    from PIL import Image
    rng = np.random.RandomState(0)
    for split in ('train', 'val'):
        os.makedirs(osp.join(root, split), exist_ok=True)
        lines = []
        for i in range(num_images):
            name = f'{split}_{i}.JPEG'
            img = rng.randint(0, 255, (size, size + 8, 3)).astype(np.uint8)
            Image.fromarray(img).save(osp.join(root, split, name))
            lines.append(f'{name} {i % 3}')
        os.makedirs(osp.join(root, 'meta'), exist_ok=True)
        with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
    return root


def write_fashion_mnist(root: str, num_train: int = 40,
                        num_test: int = 20, seed: int = 0) -> str:
    """Write a tiny Fashion-MNIST as mmpretrain's FashionMNIST reads it: the
    four unpacked IDX files (magic 0x0803 / 0x0801, big-endian sizes, bytes)
    with class-dependent brightness."""
    import struct
    rng = np.random.RandomState(seed)
    os.makedirs(root, exist_ok=True)

    def write(name, array):
        array = np.ascontiguousarray(array, dtype=np.uint8)
        header = bytes([0, 0, 0x08, array.ndim]) + b''.join(
            struct.pack('>I', n) for n in array.shape)
        with open(osp.join(root, name), 'wb') as f:
            f.write(header + array.tobytes())

    for prefix, n in (('train', num_train), ('t10k', num_test)):
        labels = np.arange(n) % 10
        images = rng.randint(0, 40, (n, 28, 28)) + labels[:, None, None] * 20
        write(f'{prefix}-images-idx3-ubyte', images)
        write(f'{prefix}-labels-idx1-ubyte', labels)
    return root


@pytest.fixture(scope='session')
def fashion_mnist_root(tmp_path_factory):
    return write_fashion_mnist(str(tmp_path_factory.mktemp('fashion_mnist')))


@pytest.fixture(scope='session')
def imagenet_root(tmp_path_factory):
    return write_imagenet(str(tmp_path_factory.mktemp('imagenet')))
