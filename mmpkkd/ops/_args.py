"""Argument normalisation and validation shared by every adder2d implementation.

All checks raise :class:`ValueError` with a message that says what to change,
so a mis-configured layer fails at its first call, not deep inside a kernel.
"""
from typing import NamedTuple, Optional, Sequence, Tuple, Union

import torch

IntOrPair = Union[int, Sequence[int]]

SUPPORTED_DTYPES = (torch.float32, torch.float64)


def to_pair(value: IntOrPair, name: str, minimum: int) -> Tuple[int, int]:
    """Return ``value`` as an ``(h, w)`` pair of ints >= ``minimum``."""
    if isinstance(value, bool):
        raise ValueError(f'adder2d: {name} must be an int or a pair of ints, '
                         f'got {value!r}')
    if isinstance(value, int):
        pair = (value, value)
    else:
        try:
            pair = tuple(value)
        except TypeError:
            raise ValueError(f'adder2d: {name} must be an int or a pair of '
                             f'ints, got {value!r}') from None
        if len(pair) != 2 or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in pair):
            raise ValueError(f'adder2d: {name} must be an int or a pair of '
                             f'ints, got {value!r}')
    if min(pair) < minimum:
        raise ValueError(f'adder2d: every {name} entry must be >= {minimum}, '
                         f'got {value!r}')
    return int(pair[0]), int(pair[1])


class Adder2dGeometry(NamedTuple):
    """Validated sizes of one adder2d call (``cpg``/``cog``: per group)."""
    batch: int
    in_channels: int
    height: int
    width: int
    out_channels: int
    kernel: Tuple[int, int]
    stride: Tuple[int, int]
    padding: Tuple[int, int]
    dilation: Tuple[int, int]
    groups: int
    out_height: int
    out_width: int

    @property
    def cpg(self) -> int:
        return self.in_channels // self.groups

    @property
    def cog(self) -> int:
        return self.out_channels // self.groups


def conv_output_size(size: int, kernel: int, stride: int, padding: int,
                     dilation: int) -> int:
    """Output length of a conv2d-style sliding window along one axis."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def check_adder2d_args(input: torch.Tensor,
                       weight: torch.Tensor,
                       bias: Optional[torch.Tensor],
                       stride: IntOrPair,
                       padding: IntOrPair,
                       dilation: IntOrPair,
                       groups: int,
                       dtypes: Sequence[torch.dtype] = SUPPORTED_DTYPES
                       ) -> Adder2dGeometry:
    """Validate an adder2d call and return its geometry.

    Raises:
        ValueError: on any inconsistency, with a hint on how to fix it.
    """
    if not isinstance(input, torch.Tensor) or not isinstance(
            weight, torch.Tensor):
        raise ValueError('adder2d: input and weight must be torch.Tensors, got '
                         f'{type(input).__name__} and {type(weight).__name__}')
    if input.dim() != 4:
        raise ValueError('adder2d: input must be 4-D (N, C_in, H, W), got '
                         f'shape {tuple(input.shape)}; add a batch dimension '
                         'with input.unsqueeze(0) for a single image')
    if weight.dim() != 4:
        raise ValueError('adder2d: weight must be 4-D (C_out, C_in/groups, '
                         f'kH, kW), got shape {tuple(weight.shape)}')
    stride = to_pair(stride, 'stride', 1)
    padding = to_pair(padding, 'padding', 0)
    dilation = to_pair(dilation, 'dilation', 1)
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f'adder2d: groups must be a positive int, got '
                         f'{groups!r}')
    n, c_in, h, w = input.shape
    c_out, cpg, kh, kw = weight.shape
    if c_in % groups != 0 or c_out % groups != 0:
        raise ValueError(f'adder2d: groups={groups} must divide both C_in='
                         f'{c_in} and C_out={c_out}')
    if cpg * groups != c_in:
        raise ValueError(
            f'adder2d: channel mismatch: input has C_in={c_in} channels but '
            f'weight {tuple(weight.shape)} with groups={groups} expects '
            f'{cpg * groups}; weight.shape[1] must be C_in/groups = '
            f'{c_in // groups}')
    if kh < 1 or kw < 1 or c_out < 1:
        raise ValueError(f'adder2d: weight shape {tuple(weight.shape)} has an '
                         'empty output-channel or kernel dimension')
    if input.device != weight.device:
        raise ValueError(f'adder2d: input is on {input.device} but weight is '
                         f'on {weight.device}; move both to the same device')
    if input.dtype != weight.dtype:
        raise ValueError(f'adder2d: input dtype {input.dtype} != weight dtype '
                         f'{weight.dtype}; cast one of them (e.g. '
                         'input.to(weight.dtype))')
    if input.dtype not in dtypes:
        names = ', '.join(str(d) for d in dtypes)
        raise ValueError(f'adder2d: dtype {input.dtype} is not supported '
                         f'(supported: {names}); cast with .float(), or run '
                         'under torch.autocast, which computes adder2d in '
                         'float32')
    if bias is not None:
        if not isinstance(bias, torch.Tensor):
            raise ValueError('adder2d: bias must be a Tensor or None, got '
                             f'{type(bias).__name__}')
        if bias.dim() != 1 or bias.numel() != c_out:
            raise ValueError(f'adder2d: bias must have shape ({c_out},) to '
                             f'match C_out, got {tuple(bias.shape)}')
        if bias.device != input.device or bias.dtype != input.dtype:
            raise ValueError(
                f'adder2d: bias ({bias.dtype}, {bias.device}) must match '
                f'input ({input.dtype}, {input.device}); cast/move the bias')
    ho = conv_output_size(h, kh, stride[0], padding[0], dilation[0])
    wo = conv_output_size(w, kw, stride[1], padding[1], dilation[1])
    if ho < 1 or wo < 1:
        raise ValueError(
            f'adder2d: input {h}x{w} is too small for kernel {kh}x{kw} with '
            f'padding={padding}, dilation={dilation} (output would be '
            f'{ho}x{wo}); increase padding or use a larger input')
    return Adder2dGeometry(n, c_in, h, w, c_out, (kh, kw), stride, padding,
                           dilation, groups, ho, wo)
