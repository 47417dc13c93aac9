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


def digits_split_indices(labels: np.ndarray) -> dict:
    """Stratified, seeded train/test indices of the digits data set."""
    rng = np.random.RandomState(SPLIT_SEED)
    test = []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        n_test = int(round(len(idx) * TEST_FRACTION))
        test.extend(rng.choice(idx, n_test, replace=False).tolist())
    test_mask = np.zeros(len(labels), dtype=bool)
    test_mask[test] = True
    return {
        'train': np.flatnonzero(~test_mask),
        'test': np.flatnonzero(test_mask)
    }


@DATASETS.register_module()
class Digits(SeededPipelineMixin, BaseDataset):
    """The handwritten digits of scikit-learn, upsampled for CIFAR networks.

    Pixel values 0-16 are scaled to 0-255, the 8x8 images are resized to
    ``img_size`` with bilinear interpolation and repeated over 3 channels so
    CIFAR-style networks take them unchanged. The split is fixed and
    stratified (:data:`SPLIT_SEED`, :data:`TEST_FRACTION`): 1,347 training
    and 450 test images.

    Args:
        split (str): ``'train'`` or ``'test'``.
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
        if split not in ('train', 'test'):
            raise ValueError(
                f"Digits split must be 'train' or 'test', got {split!r}.")
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
