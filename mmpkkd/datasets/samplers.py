"""A sampler whose indices carry the seed and epoch to the data workers."""
from typing import Iterator, Optional, Sized

from mmengine.dataset import DefaultSampler

from mmpkkd.registry import DATA_SAMPLERS
from .seeded_dataset import SeededDataset
from .seeded_pipeline import SeededPipelineMixin


class SeededIndex(int):
    """A data set index tagged with the sampler's seed and epoch.

    It behaves as the ``int`` it is, and pickles with its tags, so it
    reaches a data-loading worker through the DataLoader's index queue
    unchanged. :class:`~mmpkkd.datasets.SeededPipelineMixin` reads the tags
    to seed the sample's augmentations.

    Args:
        index (int): The index in the data set.
        seed (int): The sampler's seed (the run's ``randomness.seed``).
        epoch (int): The sampler's epoch.

    Example:
        >>> import pickle
        >>> idx = pickle.loads(pickle.dumps(SeededIndex(7, seed=0, epoch=2)))
        >>> idx + 1, idx.seed, idx.epoch
        (8, 0, 2)
    """

    seed: int
    epoch: int

    def __new__(cls, index: int, seed: int, epoch: int) -> 'SeededIndex':
        obj = super().__new__(cls, index)
        obj.seed = seed
        obj.epoch = epoch
        return obj

    def __reduce__(self):
        return type(self), (int(self), self.seed, self.epoch)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({int(self)}, seed={self.seed}, '
                f'epoch={self.epoch})')


@DATA_SAMPLERS.register_module()
class SeededSampler(DefaultSampler):
    """:class:`mmengine.dataset.DefaultSampler` with per-sample seeds.

    The same indices, order and distributed sharding as ``DefaultSampler``,
    each yielded as a :class:`SeededIndex` that carries the sampler's seed
    and epoch (set by MMEngine before every epoch). A data set with
    :class:`~mmpkkd.datasets.SeededPipelineMixin` (every mmpkkd data set),
    or any data set wrapped in :class:`~mmpkkd.datasets.SeededDataset`
    (mmpretrain's, for example), then augments sample ``i`` of epoch ``e``
    identically whatever the number of workers, whether they are
    persistent, and across a resume, and differently in every epoch.

    Args:
        dataset (Sized): A data set with
            :class:`~mmpkkd.datasets.SeededPipelineMixin`, or a
            :class:`~mmpkkd.datasets.SeededDataset`.
        shuffle (bool): Shuffle the indices every epoch. Defaults to True.
        seed (int, optional): The seed; the runner passes
            ``randomness.seed``. Defaults to None (a random, synchronised
            seed).
        round_up (bool): Pad to a multiple of the world size. Defaults to
            True.

    Example:
        >>> train_dataloader = dict(
        ...     batch_size=256, num_workers=4, persistent_workers=True,
        ...     dataset=dict(type='OfflineCIFAR10', data_root='data/cifar10',
        ...                  split='train', pipeline=train_pipeline),
        ...     sampler=dict(type='SeededSampler', shuffle=True))
    """

    def __init__(self,
                 dataset: Sized,
                 shuffle: bool = True,
                 seed: Optional[int] = None,
                 round_up: bool = True) -> None:
        inner = _unwrap_pass_through(dataset)
        if not isinstance(inner, (SeededPipelineMixin, SeededDataset)):
            name = type(inner).__name__
            raise TypeError(
                f'SeededSampler: {name} does not seed its pipeline from the '
                'index, so the sampler would have no effect. Wrap it: '
                f"dataset=dict(type='SeededDataset', dataset=dict(type="
                f"'{name}', ...)) (outermost, around any RepeatDataset or "
                'ConcatDataset), or, for your own class, add '
                'mmpkkd.datasets.SeededPipelineMixin as its first base; or '
                "use sampler=dict(type='DefaultSampler') without exact "
                'resume.')
        super().__init__(dataset, shuffle=shuffle, seed=seed,
                         round_up=round_up)

    def __iter__(self) -> Iterator[SeededIndex]:
        seed, epoch = self.seed, self.epoch
        for index in super().__iter__():
            yield SeededIndex(index, seed, epoch)


def _unwrap_pass_through(dataset: Sized) -> Sized:
    """The data set behind MMEngine's ``num_batch_per_epoch`` slicing, which
    hands indices through unchanged; any other data set as it is."""
    try:
        from mmengine.runner.runner import _SlicedDataset
    except ImportError:  # a future MMEngine without it
        return dataset
    while isinstance(dataset, _SlicedDataset):
        dataset = dataset._dataset
    return dataset
