"""ImageNet in mmpretrain's layout, with a clear error when files are absent."""
import os.path as osp

from mmpretrain.datasets import ImageNet

from mmpkkd.registry import DATASETS
from .seeded_pipeline import SeededPipelineMixin

LAYOUT = ('{root}/train/<images>, {root}/val/<images>, and annotation files '
          '{root}/meta/train.txt and {root}/meta/val.txt with one '
          '"relative/path.JPEG label" per line')


@DATASETS.register_module()
class OfflineImageNet(SeededPipelineMixin, ImageNet):
    """:class:`mmpretrain.datasets.ImageNet` that checks its files first.

    Reads ``{data_root}/{split}/`` with the annotation file
    ``{data_root}/meta/{split}.txt`` (mmpretrain's layout; a folder per
    class without annotation file also works when ``meta/`` is absent) and,
    when the image folder is missing, says which path and which layout are
    expected instead of a bare ``No such file or directory``. Seeds each
    sample's augmentations from a :class:`SeededSampler` index
    (:class:`SeededPipelineMixin`).

    Example:
        >>> ds = OfflineImageNet('data/imagenet', split='val',
        ...                      pipeline=[dict(type='LoadImageFromFile')])
    """

    def __init__(self, data_root: str = '', split: str = '', **kwargs):
        if data_root and split:
            folder = osp.join(data_root, split)
            if not osp.isdir(folder):
                raise FileNotFoundError(
                    f'ImageNet split {split!r}: directory {folder!r} not '
                    f'found. Expected {LAYOUT.format(root=data_root)}. Set '
                    '`data_root` to the directory that contains them.')
        super().__init__(data_root=data_root, split=split, **kwargs)
