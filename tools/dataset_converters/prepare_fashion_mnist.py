"""Unpack Fashion-MNIST's gzipped IDX files where mmpretrain reads them.

mmpretrain's ``FashionMNIST`` data set reads the four *unpacked* IDX files
``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` from its
``data_root``; the release (Zalando's, and Debian's ``dataset-fashion-mnist``
package in ``/usr/share/datasets/fashion-mnist``) ships them gzipped. This
tool checks each file's IDX header (type, shape, as many labels as images),
compares the MD5 of the unpacked content with the official release's (so a
re-compressed archive such as Debian's still matches; a difference is
reported, not refused: your own data in the same format is fine), and
writes the unpacked files into the output folder. Files already there with
the same content are left alone.

Example:
    sudo apt-get install dataset-fashion-mnist
    python tools/dataset_converters/prepare_fashion_mnist.py
    python tools/dataset_converters/prepare_fashion_mnist.py \\
        --src ~/Downloads/fashion-mnist --out data/fashion_mnist
"""
import argparse
import gzip
import hashlib
import os
import os.path as osp
import struct
from typing import Dict, List, Tuple

#: Where Debian's dataset-fashion-mnist package puts the archives.
DEBIAN_DIR = '/usr/share/datasets/fashion-mnist'
#: The folder the configs read (``data_root``).
DEFAULT_OUT = 'data/fashion_mnist'
#: Archive -> (MD5 of its unpacked content in the official release, IDX
#: dimensions). The archives' own MD5 (mmpretrain's) depends on how they
#: were compressed; Debian re-compressed them.
FILES: Dict[str, Tuple[str, int]] = {
    'train-images-idx3-ubyte.gz': ('f4a8712d7a061bf5bd6d2ca38dc4d50a', 3),
    'train-labels-idx1-ubyte.gz': ('9018921c3c673c538a1fc5bad174d6f9', 1),
    't10k-images-idx3-ubyte.gz': ('8181f5470baa50b63fa0f6fddb340f0a', 3),
    't10k-labels-idx1-ubyte.gz': ('15d484375f8d13e6eb1aabb0c3f46965', 1),
}
#: IDX type code of unsigned bytes, the only type mmpretrain reads.
UBYTE = 0x08


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Unpack the Fashion-MNIST IDX archives into the folder '
        "mmpretrain's FashionMNIST reads (the configs' data_root).")
    parser.add_argument(
        '--src', default=DEBIAN_DIR,
        help='folder with the four *-ubyte.gz archives (default: '
        f'{DEBIAN_DIR}, from `apt-get install dataset-fashion-mnist`)')
    parser.add_argument('--out', default=DEFAULT_OUT,
                        help=f'output folder (default: {DEFAULT_OUT})')
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of an error')
    return parser.parse_args(argv)


def idx_shape(data: bytes, name: str, dims: int) -> Tuple[int, ...]:
    """The shape in an IDX header, checked against the payload size.

    Args:
        data (bytes): The whole unpacked file.
        name (str): The file's name, for messages.
        dims (int): The expected number of dimensions (3 for images, 1 for
            labels).

    Returns:
        tuple[int, ...]: The shape, e.g. ``(60000, 28, 28)``.

    Raises:
        UserError: Not an unsigned-byte IDX file of ``dims`` dimensions, or
            a payload of another size than the header says.

    Example:
        >>> idx_shape(bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 3]), 'labels', 1)
        (2,)
    """
    from mmpkkd.utils import USAGE_EXIT, UserError
    header = 4 + 4 * dims
    if len(data) < header or data[:2] != b'\0\0' or data[2] != UBYTE \
            or data[3] != dims:
        raise UserError(
            f'{name} is not an IDX file of unsigned bytes with {dims} '
            f'dimension(s) (header {data[:4].hex() or "empty"}, expected '
            f'0000080{dims}).', USAGE_EXIT)
    shape = struct.unpack(f'>{dims}I', data[4:header])
    size = 1
    for n in shape:
        size *= n
    if len(data) - header != size:
        raise UserError(
            f'{name}: the header says {"x".join(map(str, shape))} = {size} '
            f'bytes of data, the file holds {len(data) - header}: it is '
            'truncated or corrupt.', USAGE_EXIT)
    return shape


def read_archive(src: str, name: str) -> bytes:
    """The unpacked content of ``src/name``, or of ``src/name`` without
    ``.gz`` if only the unpacked file is there."""
    from mmpkkd.utils import USAGE_EXIT, UserError
    packed, unpacked = osp.join(src, name), osp.join(src, name[:-3])
    if osp.isfile(packed):
        with open(packed, 'rb') as f:
            raw = f.read()
        try:
            data = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise UserError(f'{packed} is not a complete gzip file ({err}).',
                            USAGE_EXIT) from err
        return data
    if osp.isfile(unpacked):
        with open(unpacked, 'rb') as f:
            return f.read()
    raise UserError(
        f'{packed} does not exist. Install the data (sudo apt-get install '
        'dataset-fashion-mnist) or pass --src with the folder of the four '
        f'archives ({", ".join(FILES)}).', USAGE_EXIT)


def prepare(args: argparse.Namespace) -> List[str]:
    """Check and unpack the four files; return one report line per split."""
    from mmpkkd.utils import USAGE_EXIT, UserError, same_file
    if not osp.isdir(args.src):
        raise UserError(f'--src {args.src} is not a folder.', USAGE_EXIT)
    contents, shapes, official = {}, {}, []
    for name, (md5, dims) in FILES.items():
        data = read_archive(args.src, name)
        shapes[name] = idx_shape(data, name, dims)
        contents[name[:-3]] = data
        official.append(hashlib.md5(data).hexdigest() == md5)
    lines = []
    for split in ('train', 't10k'):
        images = shapes[f'{split}-images-idx3-ubyte.gz']
        labels = shapes[f'{split}-labels-idx1-ubyte.gz']
        if images[0] != labels[0]:
            raise UserError(
                f'{split}: {images[0]} images but {labels[0]} labels.',
                USAGE_EXIT)
        lines.append(f'{split}: {images[0]} images of {images[1]}x'
                     f'{images[2]}')
    os.makedirs(args.out, exist_ok=True)
    for name, data in contents.items():
        path = osp.join(args.out, name)
        if osp.isfile(path) and osp.getsize(path) == len(data):
            with open(path, 'rb') as f:
                if f.read() == data:
                    continue
        if same_file(path, osp.join(args.src, name)):
            raise UserError(f'--out {args.out} holds the input {name}; '
                            'choose another folder.', USAGE_EXIT)
        tmp = path + '.part'
        with open(tmp, 'wb') as f:
            f.write(data)
        os.replace(tmp, path)
    lines.append('all four files match the official release (MD5)'
                 if all(official) else
                 'note: not the official release (MD5 differs); the files '
                 'are valid IDX files and were unpacked')
    lines.append(f'unpacked into {args.out}')
    return lines


def main(argv=None) -> List[str]:
    """Run the tool; errors propagate (for use from Python)."""
    return prepare(parse_args(argv))


def report(args: argparse.Namespace) -> None:
    """Prepare the files; print one line per split."""
    print('\n'.join(prepare(args)))


if __name__ == '__main__':
    cli_args = parse_args()  # --help ends here, before torch loads
    from mmpkkd.utils import run_tool  # noqa: E402
    run_tool(report, cli_args, 'prepare_fashion_mnist.py')
