"""Fashion-MNIST from its unpacked IDX files, checked before they are read.

mmpretrain's :class:`~mmpretrain.datasets.FashionMNIST` parses the IDX
files with ``assert`` statements and a tensor ``view``: a truncated file
fails with ``shape '[60000, 28, 28]' is invalid for input of size ...``, a
damaged header with a bare ``AssertionError``, and a truncated label file
silently drops the images past its end. This subclass, registered under the
same name in mmpkkd's scope (so the configs are unchanged), checks each
file's header and size first and names the file, what is wrong and how to
restore it.
"""
import os.path as osp
import struct
from typing import List, Tuple

from mmpretrain.datasets import FashionMNIST as _FashionMNIST
from mmpretrain.datasets.utils import rm_suffix

from mmpkkd.registry import DATASETS
from mmpkkd.utils.errors import USAGE_EXIT, UserError

#: IDX type code of unsigned bytes, the only type these files use.
UBYTE = 0x08
#: How to unpack the files again.
PREPARE = 'python tools/dataset_converters/prepare_fashion_mnist.py'


class DataFileError(UserError, RuntimeError):
    """A data file that is truncated, corrupt or of another format (a
    ``RuntimeError``, as mmpretrain's data sets raise, that the tools
    report as one line, exit status 2)."""

    def __init__(self, message: str, exit_code: int = USAGE_EXIT):
        super().__init__(message, exit_code)


def idx_shape(path: str, ndim: int) -> Tuple[int, ...]:
    """The shape in the header of an unsigned-byte IDX file, after checking
    that the file holds exactly that many bytes.

    Args:
        path (str): The unpacked IDX file.
        ndim (int): Its expected number of dimensions (3 for images, 1 for
            labels).

    Returns:
        tuple[int]: The shape, e.g. ``(60000, 28, 28)``.

    Raises:
        DataFileError: The header is not that of a ``ndim``-dimensional
            unsigned-byte IDX file, or the file is shorter or longer than
            its header says.

    Example:
        >>> idx_shape('data/fashion_mnist/t10k-labels-idx1-ubyte', 1)
        (10000,)
    """
    size = osp.getsize(path)
    header = 4 * (ndim + 1)
    with open(path, 'rb') as f:
        head = f.read(header)
    if len(head) == header:
        zeros, kind, dims = struct.unpack('>HBB', head[:4])
        shape = struct.unpack(f'>{ndim}I', head[4:])
    if len(head) < header or zeros != 0 or kind != UBYTE or dims != ndim:
        raise DataFileError(
            f'{path} is not a {ndim}-dimensional IDX file of bytes (header '
            f'{head[:4].hex() or "missing"}); the file is corrupt or not '
            f'Fashion-MNIST. Unpack it again with `{PREPARE}`.')
    expected = header + _product(shape)
    if size != expected:
        kind = 'truncated' if size < expected else 'longer than its header'
        raise DataFileError(
            f'{path} is {kind}: {size:,} bytes where its header '
            f'({" x ".join(map(str, shape))}) needs {expected:,}. Unpack it '
            f'again with `{PREPARE}`.')
    return shape


def _product(shape: Tuple[int, ...]) -> int:
    total = 1
    for n in shape:
        total *= n
    return total


@DATASETS.register_module()
class FashionMNIST(_FashionMNIST):
    """mmpretrain's ``FashionMNIST`` with its IDX files checked first
    (:func:`idx_shape`): images and labels complete and as many of each.

    Takes the arguments of :class:`mmpretrain.datasets.FashionMNIST`.

    Example:
        >>> ds = FashionMNIST('data/fashion_mnist', split='test',
        ...                   test_mode=True, download=False,
        ...                   pipeline=[dict(type='PackInputs')])
        >>> ds[0]['inputs'].shape
        torch.Size([1, 28, 28])
    """

    def load_data_list(self) -> List[dict]:
        if self._check_exists():
            self._check_files()
        return super().load_data_list()

    def _check_files(self) -> None:
        files = self.test_list if self.test_mode else self.train_list
        root = self.data_prefix['root']
        images, labels = (osp.join(root, rm_suffix(name))
                          for name, _ in files)
        n_images = idx_shape(images, 3)[0]
        n_labels = idx_shape(labels, 1)[0]
        if n_images != n_labels:
            raise DataFileError(
                f'{images} holds {n_images:,} images but {labels} '
                f'{n_labels:,} labels; one of them is from another release. '
                f'Unpack both again with `{PREPARE}`.')
