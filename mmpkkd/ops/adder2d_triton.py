"""adder2d in Triton: the default GPU backend, and a CPU-testable one.

Two dispatcher ops are defined with :func:`torch.library.triton_op`, so
``torch.compile`` sees (and can fuse around) the Triton kernels::

    adder2d_triton(...)            same schema as mmpkkd::adder2d
    adder2d_triton_backward(...)   same schema as mmpkkd::adder2d_backward

with the autograd formula shared with the other adder2d ops. They run on
whatever tensors Triton can run on: CUDA (and ROCm) GPUs, and CPU tensors
under Triton's interpreter (``TRITON_INTERPRET=1``, set before the first
import of triton). On CUDA tensors ``torch.ops.mmpkkd.adder2d`` runs them
by default (see :func:`mmpkkd.ops.set_cuda_backend`).

Each kernel's tile is chosen from a short list of configurations by a
fixed rule on the layer's shape (:func:`fwd_config` and the like; no
autotuning, so no benchmarking on the first call of a shape). Every listed
configuration is compiled for sm_90 in CI and its machine code checked
(:mod:`mmpkkd.ops.sass_check`). Per call: the forward is one kernel launch,
the backward one for the input gradient and one for the weight gradient,
each plus one summation when its reduction is split to fill the GPU; the
weight is read in place.
"""
import os
from typing import Dict, List, Optional, Tuple

import torch

from ._args import IntOrPair, check_adder2d_args
from ._autocast import autocast_to_fp32

__all__ = ['adder2d_triton', 'triton_available', 'TRITON_IMPORT_ERROR',
           'shipped_configs']

try:
    import triton
    TRITON_IMPORT_ERROR: Optional[str] = None
except ImportError as err:  # a CPU-only torch without triton
    triton = None
    TRITON_IMPORT_ERROR = f'{type(err).__name__}: {err}'


def triton_available() -> bool:
    """Whether triton can be imported (it does not say a GPU is present)."""
    return triton is not None


def interpreting() -> bool:
    """Whether Triton runs kernels with its CPU interpreter."""
    return os.environ.get('TRITON_INTERPRET', '0') == '1'


# Tile configurations, named by their (rows x columns) output tile. Every
# one gives each thread an 8 x 8 block of outputs (8 x 4 for dX and the
# 64x64 dW, 4 x 8 for the 16x256 forward);
# tools and tests compile each of them for sm_90 and check its machine code
# (mmpkkd/ops/sass_check.py, tests/test_ops/test_triton_sass.py). KC * SPLIT
# reduction elements per trip of the pipelined loop, STAGES trips in flight.
_F32 = dict(TM=8, TN=8, KC=4, SPLIT=2, STAGES=3)
FWD_CONFIGS = {
    '64x128': dict(_F32, GM=8, GN=16, num_warps=4),
    '128x64': dict(_F32, GM=16, GN=8, num_warps=4),
    '128x128': dict(_F32, GM=16, GN=16, num_warps=8),
    # these two need EVEN_C (a channel mask would push them past the
    # targets); 16x256: 4 x 8 blocks, 16 channels per trip
    '32x256': dict(_F32, GM=4, GN=32, num_warps=4),
    '16x256': dict(_F32, TM=4, SPLIT=4, GM=4, GN=32, num_warps=4),
}
# configurations without a variant for channel counts that are not a
# multiple of their KC * SPLIT
EVEN_ONLY = ('32x256', '16x256')
GRAD_INPUT_CONFIGS = {
    '64x64': dict(_F32, TN=4, GM=8, GN=16, num_warps=4),
    '128x32': dict(_F32, TN=4, GM=16, GN=8, num_warps=4),
}
GRAD_WEIGHT_CONFIGS = {
    '64x128': dict(_F32, GM=8, GN=16, num_warps=4),
    '64x64': dict(_F32, TN=4, GM=8, GN=16, num_warps=4),
}
# float64: smaller register blocks (a double takes two registers)
_F64 = dict(TM=4, TN=4, GM=8, GN=16, KC=4, SPLIT=1, STAGES=3, num_warps=4)
FP64_CONFIGS = {'fwd': dict(_F64), 'dx': dict(_F64, TN=2), 'dw': dict(_F64)}


def _chunk(cfg: Dict) -> int:
    """Reduction elements per trip (the EVEN_* flags need multiples)."""
    return cfg['KC'] * cfg['SPLIT']


def fwd_config(cog: int, cpg: int, positions: int,
               fp64: bool = False) -> Dict:
    """The forward's tile for a layer (a fixed rule, not autotuned)."""
    if fp64:
        return FP64_CONFIGS['fwd']
    for name, most in (('16x256', 16), ('32x256', 32)):
        if cog <= most and cpg % _chunk(FWD_CONFIGS[name]) == 0:
            return FWD_CONFIGS[name]
    if cog <= 64:
        return FWD_CONFIGS['64x128']
    if positions >= 8192:
        return FWD_CONFIGS['128x128']
    return FWD_CONFIGS['128x64']


def grad_input_config(cpg: int, fp64: bool = False) -> Dict:
    """The input gradient's tile for a layer."""
    if fp64:
        return FP64_CONFIGS['dx']
    return GRAD_INPUT_CONFIGS['64x64' if cpg <= 64 else '128x32']


def grad_weight_config(cpg: int, fp64: bool = False) -> Dict:
    """The weight gradient's tile for a layer."""
    if fp64:
        return FP64_CONFIGS['dw']
    return GRAD_WEIGHT_CONFIGS['64x128' if cpg > 64 else '64x64']


def shipped_configs() -> List[Tuple[str, str, Dict]]:
    """Every (pass, name, configuration) the launchers can run, with the
    constexpr flags that select kernel variants; what the static machine
    code check compiles."""
    out = []
    for name, cfg in FWD_CONFIGS.items():
        for even in ((True, ) if name in EVEN_ONLY else (True, False)):
            out.append(('fwd', name + ('' if even else ' masked'),
                        dict(cfg, EVEN_C=even, IS_FP64=False,
                             HAS_BIAS=True)))
    for name, cfg in GRAD_INPUT_CONFIGS.items():
        for even in (True, False):
            out.append(('dx', name + ('' if even else ' masked'),
                        dict(cfg, EVEN_K=even, IS_FP64=False)))
    for name, cfg in GRAD_WEIGHT_CONFIGS.items():
        out.append(('dw', name, dict(cfg, IS_FP64=False)))
    out.append(('fwd', 'fp64', dict(FP64_CONFIGS['fwd'], EVEN_C=False,
                                    IS_FP64=True, HAS_BIAS=True)))
    out.append(('dx', 'fp64', dict(FP64_CONFIGS['dx'], EVEN_K=False,
                                   IS_FP64=True)))
    out.append(('dw', 'fp64', dict(FP64_CONFIGS['dw'], IS_FP64=True)))
    return out


#: Reduction splits (forward, dX) and weight-gradient row chunks are chosen
#: for the GPU they run on; set this to an int to force that many (tests
#: use it to run the split paths under the interpreter).
FORCE_SPLITS: Optional[int] = None
# a split gets at least this many trips of the reduction loop; at most
# MAX_SPLITS splits, MAX_CHUNKS weight-gradient chunks of >= MIN_ROWS rows
MIN_TRIPS = 16
MAX_SPLITS = 8
MAX_CHUNKS = 64
MIN_ROWS = 8


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _resident_programs(device: torch.device) -> int:
    """Programs the GPU runs at once (two per SM for these tiles), 0 where
    splitting does not pay (the interpreter, CPU tensors)."""
    if interpreting() or device.type != 'cuda':
        return 0
    return 2 * torch.cuda.get_device_properties(
        device).multi_processor_count


def _splits(programs: int, work: int, min_work: int, most: int,
            device: torch.device) -> int:
    """How many parts to split a reduction of ``work`` units into, when
    ``programs`` output tiles leave the GPU partly idle."""
    if FORCE_SPLITS is not None:
        return max(1, min(FORCE_SPLITS, work))
    resident = _resident_programs(device)
    if programs >= resident:
        return 1
    return max(1, min(_cdiv(resident, max(1, programs)), most,
                      work // min_work))


if triton is not None:
    from torch.library import triton_op, wrap_triton

    from . import triton_kernels as K
    from ._library import _make_backward, _setup_context

    def _meta(cfg: Dict) -> Dict:
        return dict(cfg)  # (the launch must not share the module's dict)

    def _sizes(geo) -> Tuple:
        kh, kw = geo.kernel
        return (geo.batch, geo.in_channels, geo.height, geo.width,
                geo.out_channels, geo.out_height, geo.out_width, geo.cpg,
                geo.cog, kh, kw, *geo.stride, *geo.padding, *geo.dilation)

    def _forward(input: torch.Tensor, weight: torch.Tensor,
                 bias: Optional[torch.Tensor], geo) -> torch.Tensor:
        n, g, cog, cpg = geo.batch, geo.groups, geo.cog, geo.cpg
        shape = (n, geo.out_channels, geo.out_height, geo.out_width)
        out = input.new_empty(shape)
        if out.numel() == 0:
            return out
        if cpg == 0:  # no input channels: every sum is empty
            out.zero_()
            return out if bias is None else out.add_(bias.view(1, -1, 1, 1))
        kh, kw = geo.kernel
        weight = weight.contiguous()  # (a no-op for a parameter)
        positions = n * geo.out_height * geo.out_width
        fp64 = input.dtype == torch.float64
        cfg = fwd_config(cog, cpg, positions, fp64)
        even = cpg % _chunk(cfg) == 0 and not fp64
        tiles = (_cdiv(positions, cfg['TN'] * cfg['GN']),
                 _cdiv(cog, cfg['TM'] * cfg['GM']))
        trips = _cdiv(cpg, cfg['KC'] * cfg['SPLIT']) * kh * kw
        split = _splits(tiles[0] * tiles[1] * g, trips, MIN_TRIPS,
                        MAX_SPLITS, input.device)
        # split: partial outputs, summed in a fixed order (no atomics)
        dest = out if split == 1 else out.new_empty((split, *out.shape))
        wrap_triton(K.adder2d_fwd_kernel)[(*tiles, g * split)](
            input, weight, bias if bias is not None else weight, dest,
            *_sizes(geo), *input.stride(), split,
            HAS_BIAS=bias is not None, IS_FP64=fp64,
            EVEN_C=even, **_meta(cfg))
        return out if split == 1 else dest.sum(0)

    def _grad_input(grad_out: torch.Tensor, input: torch.Tensor,
                    weight: torch.Tensor, geo) -> torch.Tensor:
        n, g, cog, cpg = geo.batch, geo.groups, geo.cog, geo.cpg
        grad_x = input.new_empty(input.shape)
        if grad_x.numel() == 0:
            return grad_x
        if cog == 0:
            return grad_x.zero_()
        kh, kw = geo.kernel
        sh, sw = geo.stride
        weight = weight.contiguous()
        fp64 = input.dtype == torch.float64
        cfg = grad_input_config(cpg, fp64)
        # pixels of the largest stride phase
        pixels = n * _cdiv(geo.height, sh) * _cdiv(geo.width, sw)
        tiles = (_cdiv(pixels, cfg['TN'] * cfg['GN']),
                 _cdiv(cpg, cfg['TM'] * cfg['GM']))
        taps = _cdiv(kh, sh) * _cdiv(kw, sw)  # (per phase, about)
        trips = _cdiv(cog, cfg['KC'] * cfg['SPLIT']) * taps
        split = _splits(tiles[0] * tiles[1] * g * sh * sw, trips, MIN_TRIPS,
                        MAX_SPLITS, input.device)
        dest = grad_x if split == 1 else grad_x.new_empty(
            (split, *grad_x.shape))
        wrap_triton(K.adder2d_grad_input_kernel)[(*tiles,
                                                   g * sh * sw * split)](
            grad_out, input, weight, dest, *_sizes(geo), *grad_out.stride(),
            *input.stride(), split, IS_FP64=fp64,
            EVEN_K=cog % _chunk(cfg) == 0 and not fp64, **_meta(cfg))
        return grad_x if split == 1 else dest.sum(0)

    def _grad_weight(grad_out: torch.Tensor, input: torch.Tensor,
                     weight: torch.Tensor, geo) -> torch.Tensor:
        n, g, cog, cpg = geo.batch, geo.groups, geo.cog, geo.cpg
        kh, kw = geo.kernel
        rows = n * geo.out_height
        if rows * geo.out_width == 0 or weight.numel() == 0:
            return weight.new_zeros(weight.shape)
        weight = weight.contiguous()
        fp64 = input.dtype == torch.float64
        cfg = grad_weight_config(cpg, fp64)
        tiles = kh * kw * _cdiv(cog, cfg['TM'] * cfg['GM']) * _cdiv(
            cpg, cfg['TN'] * cfg['GN'])
        chunks = _splits(tiles * g, rows, MIN_ROWS, MAX_CHUNKS,
                         input.device)
        per = _cdiv(rows, chunks)
        chunks = _cdiv(rows, per)
        part = (weight.new_empty(weight.shape) if chunks == 1 else
                weight.new_empty((chunks, *weight.shape)))
        wrap_triton(K.adder2d_grad_weight_kernel)[(tiles, chunks, g)](
            grad_out, input, weight, part, *_sizes(geo), *grad_out.stride(),
            *input.stride(), per, IS_FP64=fp64, **_meta(cfg))
        return part if chunks == 1 else part.sum(0)

    @triton_op('mmpkkd::adder2d_triton', mutates_args=())
    def _adder2d_triton_op(input: torch.Tensor, weight: torch.Tensor,
                           bias: Optional[torch.Tensor], stride: List[int],
                           padding: List[int], dilation: List[int],
                           groups: int) -> torch.Tensor:
        geo = check_adder2d_args(input, weight, bias, stride, padding,
                                 dilation, groups)
        return _forward(input, weight, bias, geo)

    @triton_op('mmpkkd::adder2d_triton_backward', mutates_args=())
    def _adder2d_triton_backward_op(
            grad_output: torch.Tensor, input: torch.Tensor,
            weight: torch.Tensor, stride: List[int], padding: List[int],
            dilation: List[int], groups: int,
            output_mask: List[bool]) -> Tuple[torch.Tensor, torch.Tensor]:
        geo = check_adder2d_args(input, weight, None, stride, padding,
                                 dilation, groups)
        need_x, need_w = output_mask
        grad_x = (_grad_input(grad_output, input, weight, geo)
                  if need_x else input.new_empty(0))
        grad_w = (_grad_weight(grad_output, input, weight, geo)
                  if need_w else weight.new_empty(0))
        return grad_x, grad_w

    torch.library.register_autograd(
        'mmpkkd::adder2d_triton',
        _make_backward(torch.ops.mmpkkd.adder2d_triton_backward),
        setup_context=_setup_context)


def adder2d_triton(input: torch.Tensor,
                   weight: torch.Tensor,
                   bias: Optional[torch.Tensor] = None,
                   stride: IntOrPair = 1,
                   padding: IntOrPair = 0,
                   dilation: IntOrPair = 1,
                   groups: int = 1) -> torch.Tensor:
    """adder2d computed by the Triton kernels, on whatever tensors it gets.

    Same signature, semantics, autograd and autocast rule as
    :func:`mmpkkd.ops.adder2d`; the result agrees with it to float32
    rounding. On CUDA tensors this is what ``adder2d`` runs by default; on
    CPU tensors it needs ``TRITON_INTERPRET=1`` in the environment before
    triton is first imported (Triton's interpreter: slow, for testing).

    Args:
        input: (N, C_in, H, W), float32 or float64, any memory layout.
        weight: (C_out, C_in / groups, kH, kW), same dtype/device.
        bias: optional (C_out,).
        stride, padding, dilation: int or (h, w) pair.
        groups: number of channel groups.

    Returns:
        (N, C_out, H_out, W_out) contiguous tensor.

    Raises:
        RuntimeError: if triton cannot be imported, or a CPU tensor is given
            without ``TRITON_INTERPRET=1``.
        ValueError: on inconsistent arguments (as :func:`adder2d`).

    Example:
        >>> # TRITON_INTERPRET=1 python ...   (or CUDA tensors)
        >>> x, w = torch.randn(2, 4, 8, 8), torch.randn(6, 4, 3, 3)
        >>> adder2d_triton(x, w, padding=1).shape
        torch.Size([2, 6, 8, 8])
    """
    if triton is None:
        raise RuntimeError('adder2d_triton: triton is not installed '
                           f'({TRITON_IMPORT_ERROR}); install the triton '
                           'package that matches your torch')
    if input.device.type == 'cpu' and not interpreting():
        raise RuntimeError(
            'adder2d_triton: CPU tensors need Triton\'s interpreter: set '
            'TRITON_INTERPRET=1 in the environment before starting Python '
            '(or move the tensors to a GPU)')
    input, weight, bias, ctx = autocast_to_fp32(input, weight, bias)
    with ctx:
        geo = check_adder2d_args(input, weight, bias, stride, padding,
                                 dilation, groups)
        return torch.ops.mmpkkd.adder2d_triton(input, weight, bias,
                                               list(geo.stride),
                                               list(geo.padding),
                                               list(geo.dilation), geo.groups)
