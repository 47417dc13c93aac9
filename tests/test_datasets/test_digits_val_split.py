"""Digits validation split: carved from the training images, test untouched."""
import numpy as np
from sklearn.datasets import load_digits

from mmpkkd.datasets import Digits
from mmpkkd.datasets.digits import digits_split_indices


def original_test_indices(labels: np.ndarray) -> np.ndarray:
    """The test split as first defined: 25 % per class, RandomState(0)."""
    rng = np.random.RandomState(0)
    test = []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        test.extend(rng.choice(idx, int(round(len(idx) * 0.25)),
                               replace=False).tolist())
    return np.sort(np.asarray(test))


def test_val_split_is_inside_train_and_test_is_unchanged():
    labels = load_digits().target
    splits = digits_split_indices(labels)
    np.testing.assert_array_equal(splits['test'],
                                  original_test_indices(labels))
    train, val, rest = (set(splits[k].tolist())
                        for k in ('train', 'val', 'train_without_val'))
    assert len(train) == 1347 and len(splits['test']) == 450
    assert val <= train and rest == train - val
    assert len(val) == 269 and len(rest) == 1078
    # stratified: every class holds about 20 % of its training images
    for cls in range(10):
        n_train = int((labels[splits['train']] == cls).sum())
        n_val = int((labels[splits['val']] == cls).sum())
        assert n_val == round(0.2 * n_train)


def test_digits_dataset_val_split():
    val = Digits(split='val', pipeline=[])
    assert len(val) == 269
    assert len(Digits(split='train_without_val', pipeline=[])) == 1078
