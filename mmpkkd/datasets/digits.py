"""scikit-learn's handwritten digits as a CIFAR-style image data set.

The data set ships inside scikit-learn (1,797 grey 8x8 images of the digits
0-9, UCI "optdigits" test set), so it needs no download and is the real data
behind the demo and the end-to-end tests.
"""
from typing import List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from mmpretrain.datasets import BaseDataset

from mmpkkd.registry import DATASETS
from .seeded_pipeline import SeededPipelineMixin

#: Fixed split: per class, sample ``TEST_FRACTION`` of the images for the
#: test split with ``SPLIT_SEED``. This gives 1,347 train / 450 test images.
SPLIT_SEED = 0
TEST_FRACTION = 0.25
#: Validation images for choosing hyper-parameters, carved out of the
#: training split the same way (``VAL_FRACTION`` per class, ``VAL_SEED``):
#: 269 of the 1,347; the test split is never touched.
VAL_SEED = 1
VAL_FRACTION = 0.2


def _stratified_pick(labels: np.ndarray, pool: np.ndarray, fraction: float,
                     seed: int) -> np.ndarray:
    """Mask of ``round(fraction * n_c)`` seeded picks per class from pool."""
    rng = np.random.RandomState(seed)
    picked = []
    for cls in np.unique(labels[pool]):
        idx = pool[labels[pool] == cls]
        n_pick = int(round(len(idx) * fraction))
        picked.extend(rng.choice(idx, n_pick, replace=False).tolist())
    mask = np.zeros(len(labels), dtype=bool)
    mask[picked] = True
    return mask


def digits_split_indices(labels: np.ndarray) -> dict:
    """Stratified, seeded indices of the digits data set.

    ``'train'`` and ``'test'`` partition the data; ``'val'`` is a subset of
    ``'train'`` and ``'train_without_val'`` the rest of it.
    """
    test_mask = _stratified_pick(labels, np.arange(len(labels)),
                                 TEST_FRACTION, SPLIT_SEED)
    train = np.flatnonzero(~test_mask)
    val_mask = _stratified_pick(labels, train, VAL_FRACTION, VAL_SEED)
    return {
        'train': train,
        'test': np.flatnonzero(test_mask),
        'val': np.flatnonzero(val_mask),
        'train_without_val': np.flatnonzero(~test_mask & ~val_mask),
    }


@DATASETS.register_module()
class Digits(SeededPipelineMixin, BaseDataset):
    """The handwritten digits of scikit-learn, upsampled for CIFAR networks.

    Pixel values 0-16 are scaled to 0-255, the 8x8 images are resized to
    ``img_size`` with bilinear interpolation and repeated over 3 channels so
    CIFAR-style networks take them unchanged. The split is fixed and
    stratified (:data:`SPLIT_SEED`, :data:`TEST_FRACTION`): 1,347 training
    and 450 test images. For choosing hyper-parameters without the test
    images, ``'val'`` holds 269 of the training images and
    ``'train_without_val'`` the other 1,078.

    Args:
        split (str): ``'train'``, ``'test'``, ``'val'`` or
            ``'train_without_val'``.
        img_size (int): Output side length. Defaults to 32.
        **kwargs: Other arguments of :class:`mmpretrain.datasets.BaseDataset`
            such as ``pipeline`` and ``test_mode``.

    Example:
        >>> ds = Digits(split='test', pipeline=[dict(type='PackInputs')])
        >>> len(ds), ds[0]['inputs'].shape
        (450, torch.Size([3, 32, 32]))
    """

    METAINFO = {'classes': tuple(str(i) for i in range(10))}

    def __init__(self,
                 split: str = 'train',
                 img_size: int = 32,
                 metainfo: Optional[dict] = None,
                 **kwargs):
        splits = ('train', 'test', 'val', 'train_without_val')
        if split not in splits:
            raise ValueError(
                f'Digits split must be one of {splits}, got {split!r}.')
        self.split = split
        self.img_size = img_size
        super().__init__(ann_file='', metainfo=metainfo, **kwargs)

    def load_data_list(self) -> List[dict]:
        from sklearn.datasets import load_digits
        digits = load_digits()
        labels = digits.target.astype(np.int64)
        images = torch.from_numpy(digits.images.astype(np.float32) * 255 / 16)
        images = F.interpolate(
            images[:, None], size=(self.img_size, self.img_size),
            mode='bilinear', align_corners=False)
        images = images.clamp(0, 255).round().to(torch.uint8)
        images = images.repeat(1, 3, 1, 1).permute(0, 2, 3, 1).numpy()
        idx = digits_split_indices(labels)[self.split]
        return [{
            'img': np.ascontiguousarray(images[i]),
            'gt_label': int(labels[i])
        } for i in idx]
