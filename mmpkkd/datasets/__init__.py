from .cifar import OfflineCIFAR10, OfflineCIFAR100, load_cifar_batch
from .digits import Digits, digits_split_indices
from .fashion_mnist import DataFileError, FashionMNIST, idx_shape
from .imagenet import OfflineImageNet
from .samplers import SeededIndex, SeededSampler
from .seeded_dataset import SeededDataset
from .seeded_pipeline import (SeededPipelineMixin, sample_seeds,
                              seeded_generators, seeded_getitem)

__all__ = [
    'OfflineCIFAR10', 'OfflineCIFAR100', 'load_cifar_batch', 'Digits',
    'digits_split_indices', 'DataFileError', 'FashionMNIST', 'idx_shape',
    'OfflineImageNet', 'SeededIndex', 'SeededSampler', 'SeededDataset',
    'SeededPipelineMixin', 'sample_seeds', 'seeded_generators',
    'seeded_getitem'
]
