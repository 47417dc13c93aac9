"""Output paths checked before a tool starts its work.

A tool that finds out at the end that it cannot write its result has
wasted the work; one that writes onto its input has destroyed it. Both are
checked up front by :func:`check_output_path`, which creates nothing (the
folders are made by :func:`make_parent` when the result is written).
"""
import os
import os.path as osp
from typing import Iterable, Optional

from .errors import USAGE_EXIT, UserError


def same_file(a: str, b: str) -> bool:
    """Whether two paths name one file (links and ``..`` resolved)."""
    if osp.exists(a) and osp.exists(b):
        return osp.samefile(a, b)
    return osp.realpath(a) == osp.realpath(b)


def check_output_path(path: str,
                      inputs: Iterable[Optional[str]] = (),
                      option: str = '--out') -> str:
    """Refuse an output path that would overwrite an input or cannot be
    written.

    Args:
        path (str): The output file.
        inputs (iterable of str): The tool's input files (None entries are
            skipped).
        option (str): How the path was given, for messages.

    Returns:
        str: ``path``.

    Raises:
        UserError: ``path`` is one of ``inputs``, is a directory, lies
            below a file, or its folder cannot be written (exit status 2).

    Example:
        >>> check_output_path('ckpt.pth', inputs=['ckpt.pth'])
        Traceback (most recent call last):
        UserError: --out ckpt.pth is the input file ckpt.pth ...
    """
    for src in inputs:
        if src is not None and same_file(path, src):
            raise UserError(
                f'{option} {path} is the input file {src}; writing there '
                'would destroy the input. Choose another output path.',
                USAGE_EXIT)
    if osp.isdir(path):
        raise UserError(f'{option} {path} is a directory; give a file name '
                        f'(e.g. {osp.join(path, "out")}...).', USAGE_EXIT)
    if osp.exists(path) and not os.access(path, os.W_OK):
        raise UserError(f'{option} {path} exists and is not writable.',
                        USAGE_EXIT)
    folder = osp.dirname(osp.abspath(path))
    existing = folder
    while not osp.exists(existing):
        existing = osp.dirname(existing)
    if not osp.isdir(existing):
        raise UserError(
            f'{option} {path}: cannot create folder {folder} because '
            f'{existing} is a file.', USAGE_EXIT)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(
            f'{option} {path}: no permission to write in {existing}. Choose '
            'an output path in a folder you can write to.', USAGE_EXIT)
    return path


def make_parent(path: str) -> str:
    """Create the folder of ``path`` if needed; return ``path``."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    return path
