"""Run a data pipeline on random generators seeded for one sample.

mmpretrain's and mmcv's random transforms draw from the global generators
of numpy and Python's :mod:`random` (a few from torch's). With data-loading
workers those generators live in the worker processes, which MMEngine
seeds with ``seed + rank * num_workers + worker_id`` at start-up: the
epoch plays no part, so after a resume the workers replay the first
epoch's augmentations, and non-persistent workers replay them every epoch.

Here each sample's pipeline runs on generators seeded from the global
seed, the epoch and the sample's index, carried to the worker by
:class:`~mmpkkd.datasets.SeededIndex` (yielded by
:class:`~mmpkkd.datasets.SeededSampler`). The augmentation of a sample is
then a function of (seed, epoch, index) alone: the same with 0 or N
workers, persistent or not, and after a resume.
"""
import random
from contextlib import contextmanager
from typing import Callable, Iterator, Tuple

import numpy as np
import torch
from torch.utils.data import get_worker_info

#: Mask that maps any Python int (e.g. a negative seed) to the non-negative
#: 64-bit entropy :class:`numpy.random.SeedSequence` accepts.
_UINT64 = (1 << 64) - 1


def sample_seeds(seed: int, epoch: int, index: int) -> Tuple[int, int, int]:
    """Seeds for Python ``random``, numpy and torch for one sample.

    The three 32-bit seeds come from one
    :class:`numpy.random.SeedSequence` over ``(seed, epoch, index)``, so
    neighbouring samples and epochs get unrelated streams and the three
    generators do not share a seed.

    Args:
        seed (int): The run's global seed (``randomness.seed``).
        epoch (int): The epoch, counted from 0 as MMEngine does.
        index (int): The sample's index in the data set.

    Returns:
        tuple[int, int, int]: Seeds for ``random``, ``numpy.random`` and
        torch's default CPU generator.

    Example:
        >>> sample_seeds(0, 1, 7) == sample_seeds(0, 1, 7)
        True
        >>> sample_seeds(0, 1, 7) == sample_seeds(0, 2, 7)
        False
    """
    entropy = [int(seed) & _UINT64, int(epoch) & _UINT64, int(index) & _UINT64]
    py_seed, np_seed, torch_seed = np.random.SeedSequence(
        entropy).generate_state(3)
    return int(py_seed), int(np_seed), int(torch_seed)


@contextmanager
def seeded_generators(seeds: Tuple[int, int, int],
                      restore: bool = True) -> Iterator[None]:
    """Seed the global ``random``, numpy and torch CPU generators.

    Args:
        seeds (tuple[int, int, int]): From :func:`sample_seeds`.
        restore (bool): Put the previous generator states back on exit, so
            the caller's random stream is untouched. A data-loading worker
            has no stream of its own to protect and skips this (about
            0.1 ms per sample). Defaults to True.

    Example:
        >>> with seeded_generators(sample_seeds(0, 0, 3)):
        ...     a = np.random.rand()
        >>> with seeded_generators(sample_seeds(0, 0, 3)):
        ...     b = np.random.rand()
        >>> a == b
        True
    """
    if restore:
        saved = (random.getstate(), np.random.get_state(),
                 torch.get_rng_state())
    py_seed, np_seed, torch_seed = seeds
    random.seed(py_seed)
    np.random.seed(np_seed)
    # the CPU generator only: torch.manual_seed would also seed every CUDA
    # device (and cost 0.1 ms), and pipelines do not run on the GPU
    torch.default_generator.manual_seed(torch_seed)
    try:
        yield
    finally:
        if restore:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.set_rng_state(saved[2])


class SeededPipelineMixin:
    """Data set mixin: run each sample's pipeline on its own seeds.

    Put it first among the bases of a :class:`mmengine.dataset.BaseDataset`
    subclass (for a data set you do not define, e.g. one of mmpretrain's,
    wrap it in :class:`~mmpkkd.datasets.SeededDataset` instead). An index
    that carries ``seed`` and ``epoch`` (a
    :class:`~mmpkkd.datasets.SeededIndex` from
    :class:`~mmpkkd.datasets.SeededSampler`) reseeds the global generators
    from :func:`sample_seeds` before the pipeline runs, re-fetches of
    broken samples included; a plain ``int`` index leaves them alone, so
    validation and ``dataset[i]`` behave as before. In the main process
    (``num_workers=0``) the generators are restored afterwards, so the
    training process's own random stream (dropout, Mixup) is the same as
    with workers.

    Example:
        >>> from mmpkkd.datasets import Digits, SeededIndex
        >>> ds = Digits(split='train', pipeline=[
        ...     dict(type='RandomCrop', crop_size=32, padding=4),
        ...     dict(type='PackInputs')])
        >>> a = ds[SeededIndex(5, seed=0, epoch=1)]['inputs']
        >>> b = ds[SeededIndex(5, seed=0, epoch=1)]['inputs']
        >>> a.shape, bool((a == b).all())
        (torch.Size([3, 32, 32]), True)
    """

    def __getitem__(self, idx: int) -> dict:
        return seeded_getitem(super().__getitem__, idx)


def seeded_getitem(getitem: Callable[[int], dict], idx: int) -> dict:
    """``getitem(idx)`` on generators seeded for the sample, if ``idx``
    carries a seed and an epoch (a :class:`~mmpkkd.datasets.SeededIndex`).

    The shared body of :class:`SeededPipelineMixin` and
    :class:`~mmpkkd.datasets.SeededDataset`. ``getitem`` receives a plain
    ``int``, so ``sample_idx`` in the data samples stays an ``int`` as with
    any other sampler. In the main process (no data-loading workers) the
    generators are restored afterwards.

    Args:
        getitem: The data set's own ``__getitem__``.
        idx (int): The index, tagged or not.

    Returns:
        dict: The sample.

    Example:
        >>> from mmpkkd.datasets import SeededIndex
        >>> draw = lambda i: dict(i=i, r=np.random.rand())
        >>> a = seeded_getitem(draw, SeededIndex(3, seed=0, epoch=1))
        >>> b = seeded_getitem(draw, SeededIndex(3, seed=0, epoch=1))
        >>> a == b, type(a['i'])
        (True, <class 'int'>)
    """
    seed, epoch = getattr(idx, 'seed', None), getattr(idx, 'epoch', None)
    if seed is None or epoch is None:
        return getitem(idx)
    seeds = sample_seeds(seed, epoch, idx)
    in_main_process = get_worker_info() is None
    with seeded_generators(seeds, restore=in_main_process):
        return getitem(int(idx))
