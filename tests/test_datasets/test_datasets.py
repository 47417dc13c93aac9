"""Data sets: tiny CIFAR files in the real format, the embedded digits."""
import os
import os.path as osp
import pickle
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from mmengine.dataset import DefaultSampler

from mmpkkd.datasets import (Digits, OfflineCIFAR10, OfflineCIFAR100,
                             OfflineImageNet, SeededIndex, SeededSampler,
                             digits_split_indices, load_cifar_batch,
                             sample_seeds)


def test_cifar10_reads_real_format(cifar10_root):
    train = OfflineCIFAR10(cifar10_root, split='train', verify_md5=False)
    test = OfflineCIFAR10(cifar10_root, split='test', verify_md5=False)
    assert len(train) == 5 * 8 and len(test) == 8
    # independent read of the first training batch
    with open(osp.join(cifar10_root, 'cifar-10-batches-py', 'data_batch_1'),
              'rb') as f:
        raw = pickle.load(f, encoding='latin1')
    first = train.get_data_info(0)
    np.testing.assert_array_equal(
        first['img'], raw['data'][0].reshape(3, 32, 32).transpose(1, 2, 0))
    assert first['gt_label'] == raw['labels'][0]
    assert len(train.CLASSES) == 10


def test_cifar100_fine_labels(cifar100_root):
    ds = OfflineCIFAR100(cifar100_root, split='test', verify_md5=False)
    with open(osp.join(cifar100_root, 'cifar-100-python', 'test'), 'rb') as f:
        raw = pickle.load(f, encoding='latin1')
    assert [ds.get_data_info(i)['gt_label']
            for i in range(len(ds))] == raw['fine_labels']


def test_cifar_md5_checked_by_default(cifar10_root):
    with pytest.raises(RuntimeError, match='md5 mismatch.*verify_md5=False'):
        OfflineCIFAR10(cifar10_root, split='test')


def test_cifar_missing_directory_names_path_and_files(tmp_path):
    root = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError) as err:
        OfflineCIFAR10(root, split='train')
    msg = str(err.value)
    assert osp.join(root, 'cifar-10-batches-py') in msg
    assert 'data_batch_1' in msg and 'test_batch' in msg


def test_cifar_tampered_batch_is_not_executed(cifar10_root, tmp_path):
    marker = str(tmp_path / 'pwned')

    class Payload:

        def __reduce__(self):
            return (os.system, (f'touch {marker}', ))

    path = osp.join(cifar10_root, 'cifar-10-batches-py', 'test_batch')
    with open(path, 'wb') as f:
        pickle.dump({'data': Payload(), 'labels': [0]}, f)
    with pytest.raises(pickle.UnpicklingError, match='not a genuine'):
        load_cifar_batch(path)
    assert not osp.exists(marker)


def test_digits_fixed_stratified_split():
    labels = load_digits().target
    split = digits_split_indices(labels)
    assert len(split['train']) == 1347 and len(split['test']) == 450
    assert not set(split['train']) & set(split['test'])
    for cls in range(10):  # 25 % of every class, rounded
        n = (labels == cls).sum()
        assert (labels[split['test']] == cls).sum() == round(n * 0.25)
    # the split is a constant, not a fresh draw
    np.testing.assert_array_equal(split['test'],
                                  digits_split_indices(labels)['test'])


def test_digits_images_match_sklearn():
    digits = load_digits()
    ds = Digits(split='test')
    assert len(ds) == 450 and ds.CLASSES == tuple('0123456789')
    idx = digits_split_indices(digits.target)['test']
    for i in (0, 17, 449):
        info = ds.get_data_info(i)
        assert info['img'].shape == (32, 32, 3)
        assert info['img'].dtype == np.uint8
        assert info['gt_label'] == digits.target[idx[i]]
        # area-downsampling the 32x32 image recovers the 8x8 original
        img = torch.from_numpy(info['img'][..., 0]).float()[None, None]
        small = F.interpolate(img, size=(8, 8), mode='area')[0, 0].numpy()
        original = digits.images[idx[i]] * 255 / 16
        assert np.abs(small - original).mean() < 25  # bilinear blur
        assert np.corrcoef(small.ravel(), original.ravel())[0, 1] > 0.97


def test_imagenet_layout_and_missing_directory(imagenet_root, tmp_path):
    ds = OfflineImageNet(imagenet_root, split='val')
    lines = open(osp.join(imagenet_root, 'meta', 'val.txt')).read().split()
    assert len(ds) == len(lines) // 2
    assert ds.get_data_info(1)['gt_label'] == int(lines[3])
    with pytest.raises(FileNotFoundError) as err:
        OfflineImageNet(str(tmp_path / 'nowhere'), split='train')
    assert osp.join(str(tmp_path / 'nowhere'), 'train') in str(err.value)
    assert 'meta/train.txt' in str(err.value)


# --------------------------------------------------------------------------
# Per-sample augmentation seeds (SeededSampler -> SeededPipelineMixin)

CROP = [dict(type='RandomCrop', crop_size=32, padding=4),
        dict(type='PackInputs')]


def test_seeded_index_is_an_int_that_pickles_with_its_tags():
    idx = SeededIndex(7, seed=3, epoch=2)
    assert idx == 7 and isinstance(idx, int) and list(range(10))[idx] == 7
    back = pickle.loads(pickle.dumps([idx]))[0]
    assert type(back) is SeededIndex
    assert (int(back), back.seed, back.epoch) == (7, 3, 2)


def test_seeded_sampler_keeps_default_order_and_tags_epoch():
    ds = Digits(split='test')
    ours, ref = SeededSampler(ds, seed=5), DefaultSampler(ds, seed=5)
    for epoch in (0, 3):
        ours.set_epoch(epoch)
        ref.set_epoch(epoch)
        got = list(ours)
        assert [int(i) for i in got] == list(ref)
        assert {(i.seed, i.epoch) for i in got} == {(5, epoch)}


def test_seeded_sampler_refuses_dataset_that_ignores_seeds():
    with pytest.raises(TypeError, match="SeededPipelineMixin.*'Default"):
        SeededSampler(list(range(10)), seed=0)


def test_sample_seeds_depend_on_seed_epoch_and_index():
    base = sample_seeds(0, 1, 7)
    assert base == sample_seeds(0, 1, 7)
    others = [sample_seeds(1, 1, 7), sample_seeds(0, 2, 7),
              sample_seeds(0, 1, 8), sample_seeds(-1, 1, 7)]
    assert len({base, *others}) == 5
    # three generators, three different 32-bit seeds
    assert len(set(base)) == 3 and all(0 <= s < 2**32 for s in base)


def test_seeded_sample_is_the_crop_drawn_from_its_seed():
    """Hand reference: mmpretrain's RandomCrop pads by 4 with zeros and
    draws the row offset, then the column offset, from numpy's global
    generator, which the mixin seeds with sample_seeds(...)[1]."""
    ds = Digits(split='train', pipeline=CROP)
    raw = Digits(split='train')
    for index, epoch in [(0, 0), (0, 1), (11, 1)]:
        got = ds[SeededIndex(index, seed=4, epoch=epoch)]['inputs']
        rng = np.random.RandomState(sample_seeds(4, epoch, index)[1])
        top, left = rng.randint(0, 9), rng.randint(0, 9)
        padded = np.pad(raw.get_data_info(index)['img'],
                        ((4, 4), (4, 4), (0, 0)))
        expected = padded[top:top + 32, left:left + 32].transpose(2, 0, 1)
        np.testing.assert_array_equal(got.numpy(), expected)


def test_seeded_sample_leaves_callers_generators_alone():
    """With num_workers=0 the pipeline runs in the training process: its
    own random streams must not depend on the data loading."""
    ds = Digits(split='train', pipeline=CROP)
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    before = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    ds[SeededIndex(3, seed=0, epoch=0)]
    after = (random.random(), np.random.rand(), torch.rand(1).item())
    assert after == before
    # a plain index augments from the global stream, as before
    np.random.seed(1)
    a = ds[3]['inputs']
    np.random.seed(1)
    assert torch.equal(ds[3]['inputs'], a)
