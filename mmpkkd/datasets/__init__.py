from .cifar import OfflineCIFAR10, OfflineCIFAR100, load_cifar_batch
from .digits import Digits, digits_split_indices
from .imagenet import OfflineImageNet

__all__ = [
    'OfflineCIFAR10', 'OfflineCIFAR100', 'load_cifar_batch', 'Digits',
    'digits_split_indices', 'OfflineImageNet'
]
