"""CIFAR-10/100 read offline from the real ``cifar-*-py`` batch files.

mmpretrain's :class:`~mmpretrain.datasets.CIFAR10` verifies the md5 of every
batch file and unpickles them with the unrestricted :mod:`pickle`. These
subclasses keep the format and the class names but

* make the md5 check optional (``verify_md5=False`` lets tests use tiny
  files written in the real format),
* fail with a message that names the directory and the files expected
  when the data set is absent, and
* unpickle the batch files with an unpickler that only builds numpy arrays,
  lists, dicts and strings, so a tampered file cannot run code,
* report a truncated or corrupt batch file by name, with how to restore
  it, and
* seed each sample's augmentations from a :class:`SeededSampler` index
  (:class:`SeededPipelineMixin`).
"""
import io
import os.path as osp
import pickle
from typing import List

import numpy as np
from mmengine.fileio import get
from mmpretrain.datasets import CIFAR10, CIFAR100
from mmpretrain.datasets.utils import check_md5

from mmpkkd.registry import DATASETS
from .fashion_mnist import DataFileError
from .seeded_pipeline import SeededPipelineMixin

#: Bytes of one 32x32 RGB CIFAR image.
IMAGE_BYTES = 3 * 32 * 32


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals numpy arrays need."""

    _ALLOWED = {
        ('numpy.core.multiarray', '_reconstruct'),
        ('numpy._core.multiarray', '_reconstruct'),
        ('numpy', 'ndarray'),
        ('numpy', 'dtype'),
        ('_codecs', 'encode'),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f'CIFAR batch file references {module}.{name}; only numpy '
                'arrays, lists, dicts and strings are allowed. The file is '
                'not a genuine CIFAR batch.')
        return super().find_class(module, name)


def load_cifar_batch(path: str) -> dict:
    """Read one ``cifar-*-batches-py`` file safely (latin1 encoding).

    Raises:
        DataFileError: The file is truncated, corrupt or not a CIFAR batch
            (one line naming it and how to restore it).
    """
    try:
        batch = _ArrayUnpickler(io.BytesIO(get(path)),
                                encoding='latin1').load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError,
            AttributeError, IndexError, KeyError, UnicodeDecodeError,
            MemoryError) as err:
        if 'only numpy arrays' in str(err):
            raise  # a tampered file: refused by the allow-list
        raise DataFileError(
            f'CIFAR batch file {path} is truncated or corrupt ({err}). '
            'Extract the official cifar-*-python.tar.gz there again.'
        ) from err
    if not isinstance(batch, dict):
        raise DataFileError(
            f'CIFAR batch file {path} holds a {type(batch).__name__}, not '
            'the dict of a CIFAR batch. Extract the official '
            'cifar-*-python.tar.gz there again.')
    return batch


def _batch_images(entry: dict, path: str) -> np.ndarray:
    """The ``data`` array of a batch, checked to hold whole images."""
    data = np.asarray(entry.get('data', ()), dtype=np.uint8)
    if data.size == 0 or data.size % IMAGE_BYTES:
        raise DataFileError(
            f'CIFAR batch file {path} is corrupt: its data holds {data.size}'
            f' bytes, not a whole number of {IMAGE_BYTES}-byte images. '
            'Extract the official cifar-*-python.tar.gz there again.')
    return data.reshape(-1, IMAGE_BYTES)


class _OfflineCIFARMixin:
    """Shared loading logic; the CIFAR class provides the file lists."""

    def _expected_files(self) -> List[list]:
        return self.train_list + self.test_list + [[
            self.meta['filename'], self.meta['md5']
        ]]

    def _check_integrity(self) -> bool:
        folder = osp.join(self.data_prefix['root'], self.base_folder)
        missing = [
            name for name, _ in self._expected_files()
            if not osp.isfile(osp.join(folder, name))
        ]
        if missing:
            raise FileNotFoundError(
                f'{type(self).__name__}: {missing} not found in {folder!r}. '
                f'Expected the extracted {self.filename} there '
                f"(files {[n for n, _ in self._expected_files()]}); set "
                '`data_root` to the directory that contains '
                f'{self.base_folder!r}.')
        if not self.verify_md5:
            return True
        bad = [
            name for name, md5 in self._expected_files()
            if not check_md5(osp.join(folder, name), md5)
        ]
        if bad:
            raise DataFileError(
                f'{type(self).__name__}: md5 mismatch for {bad} in {folder!r}.'
                ' The files are incomplete or not the official release; '
                're-extract them, or pass `verify_md5=False` for a custom '
                'data set in the same format.')
        return True

    def _load_meta(self) -> None:
        path = osp.join(self.data_prefix['root'], self.base_folder,
                        self.meta['filename'])
        self._metainfo.setdefault(
            'classes', load_cifar_batch(path)[self.meta['key']])

    def load_data_list(self) -> List[dict]:
        root = self.data_prefix['root']
        self._check_integrity()
        files = self.train_list if self.split == 'train' else self.test_list
        imgs, labels = [], []
        for name, _ in files:
            path = osp.join(root, self.base_folder, name)
            entry = load_cifar_batch(path)
            imgs.append(_batch_images(entry, path))
            labels.extend(entry.get('labels', entry.get('fine_labels', [])))
        imgs = np.vstack(imgs).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        if len(imgs) != len(labels):
            raise DataFileError(
                f'{type(self).__name__}: {len(imgs)} images but '
                f'{len(labels)} labels in {files}; the batch files are '
                'corrupt.')
        if self.CLASSES is None:
            self._load_meta()
        return [{
            'img': img,
            'gt_label': int(label)
        } for img, label in zip(imgs, labels)]


@DATASETS.register_module()
class OfflineCIFAR10(SeededPipelineMixin, _OfflineCIFARMixin, CIFAR10):
    """CIFAR-10 from ``{data_root}/cifar-10-batches-py``, never downloaded.

    Args:
        data_root (str): Directory that contains ``cifar-10-batches-py``.
        split (str): ``'train'`` or ``'test'``.
        verify_md5 (bool): Check every file against the official md5.
            Defaults to True.
        **kwargs: Other arguments of :class:`mmpretrain.datasets.CIFAR10`.

    Example:
        >>> ds = OfflineCIFAR10('data/cifar10', split='test',
        ...                     pipeline=[dict(type='PackInputs')])
        >>> ds[0]['inputs'].shape
        torch.Size([3, 32, 32])
    """

    def __init__(self, *args, verify_md5: bool = True, **kwargs):
        self.verify_md5 = verify_md5
        kwargs['download'] = False
        super().__init__(*args, **kwargs)


@DATASETS.register_module()
class OfflineCIFAR100(SeededPipelineMixin, _OfflineCIFARMixin, CIFAR100):
    """CIFAR-100 from ``{data_root}/cifar-100-python``; see OfflineCIFAR10."""

    def __init__(self, *args, verify_md5: bool = True, **kwargs):
        self.verify_md5 = verify_md5
        kwargs['download'] = False
        super().__init__(*args, **kwargs)
