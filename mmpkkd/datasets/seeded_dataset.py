"""A data set wrapper that gives any data set per-sample augmentation seeds."""
import copy
from typing import Any, Union

from torch.utils.data import Dataset

from mmpkkd.registry import DATASETS
from .seeded_pipeline import seeded_getitem


@DATASETS.register_module()
class SeededDataset(Dataset):
    """Run any data set's pipeline on seeds of (seed, epoch, index).

    The wrapper form of :class:`~mmpkkd.datasets.SeededPipelineMixin`, for
    data sets you do not define: mmpretrain's (``FashionMNIST``,
    ``CustomDataset``, ``ImageNet``, ...) or your own. With
    :class:`~mmpkkd.datasets.SeededSampler`, sample ``i`` of epoch ``e`` is
    augmented identically whatever the number of workers and across a
    resume, and differently in every epoch. A plain ``int`` index (no
    ``SeededSampler``, validation, ``dataset[i]``) reaches the wrapped data
    set unchanged.

    Put it outermost: MMEngine's ``RepeatDataset``, ``ConcatDataset`` and
    ``ClassBalancedDataset`` turn the index into a plain ``int``, so they go
    inside it. Other attributes (``metainfo``, ``get_data_info``,
    ``CLASSES``, ...) are those of the wrapped data set.

    Args:
        dataset (dict | Dataset): The data set, or its config (built from
            the ``DATASETS`` registry: mmpkkd's, then mmpretrain's).

    Example:
        >>> train_dataloader = dict(
        ...     batch_size=64, num_workers=2,
        ...     sampler=dict(type='SeededSampler', shuffle=True),
        ...     dataset=dict(
        ...         type='SeededDataset',
        ...         dataset=dict(type='FashionMNIST', data_root='data/fm',
        ...                      split='train', pipeline=train_pipeline)))
        >>> ds = SeededDataset(dict(type='CustomDataset', data_root='imgs',
        ...                         pipeline=[dict(type='LoadImageFromFile'),
        ...                                   dict(type='RandomFlip', prob=.5),
        ...                                   dict(type='PackInputs')]))
        >>> a = ds[SeededIndex(3, seed=0, epoch=1)]['inputs']
        >>> b = ds[SeededIndex(3, seed=0, epoch=1)]['inputs']
        >>> bool((a == b).all())  # same seed, epoch and index: same flip
        True
    """

    def __init__(self, dataset: Union[dict, Dataset]) -> None:
        if isinstance(dataset, dict):
            dataset = DATASETS.build(copy.deepcopy(dataset))
        elif not hasattr(dataset, '__getitem__') or not hasattr(
                dataset, '__len__'):
            raise TypeError(
                'SeededDataset: dataset must be a data set config (a dict '
                "with 'type') or a data set with __getitem__ and __len__, "
                f'got {type(dataset).__name__}')
        self.dataset = dataset

    def __getitem__(self, idx: int) -> Any:
        return seeded_getitem(self.dataset.__getitem__, idx)

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def metainfo(self) -> dict:
        """The wrapped data set's meta information (classes, ...)."""
        return copy.deepcopy(getattr(self.dataset, 'metainfo', {}))

    def full_init(self) -> None:
        """Fully initialise the wrapped data set (if it is lazy)."""
        full_init = getattr(self.dataset, 'full_init', None)
        if full_init is not None:
            full_init()

    def __getattr__(self, name: str) -> Any:
        # only reached for names the wrapper lacks; `dataset` itself is in
        # __dict__ once set (guard against recursion before that)
        if name == 'dataset':
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(\n{self.dataset!r})'
