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

Tile sizes are autotuned per coarse shape (the first call of a new shape
class benchmarks a few configurations); ``MMPKKD_TRITON_AUTOTUNE=0`` uses
the first configuration of each list instead, and the interpreter always
does.
"""
import os
from typing import Dict, List, Optional, Tuple

import torch

from ._args import IntOrPair, check_adder2d_args
from ._autocast import autocast_to_fp32

__all__ = ['adder2d_triton', 'triton_available', 'TRITON_IMPORT_ERROR']

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


def _next_pow2(value: int) -> int:
    return 1 << max(0, int(value) - 1).bit_length()


if triton is not None:
    from torch.library import triton_op, wrap_triton

    from . import triton_kernels as K
    from ._library import _make_backward, _setup_context

    # (first entry: the configuration used without autotuning)
    # UNROLL=1 entries: the configurations measured best on an H200 for
    # the ResNet-50 3x3 layers (forward); UNROLL 4/8 won on the smaller
    # ResNet-20 layers (docs/gpu.md)
    FWD_CONFIGS = [
        dict(BLOCK_CO=64, BLOCK_P=64, UNROLL=4, num_warps=4),
        dict(BLOCK_CO=64, BLOCK_P=64, UNROLL=1, num_warps=4),
        dict(BLOCK_CO=32, BLOCK_P=128, UNROLL=1, num_warps=4),
        dict(BLOCK_CO=64, BLOCK_P=128, UNROLL=1, num_warps=8),
        dict(BLOCK_CO=128, BLOCK_P=64, UNROLL=1, num_warps=8),
        dict(BLOCK_CO=64, BLOCK_P=128, UNROLL=4, num_warps=8),
        dict(BLOCK_CO=64, BLOCK_P=64, UNROLL=8, num_warps=4),
        dict(BLOCK_CO=32, BLOCK_P=128, UNROLL=8, num_warps=4),
        dict(BLOCK_CO=128, BLOCK_P=64, UNROLL=4, num_warps=8),
        dict(BLOCK_CO=16, BLOCK_P=128, UNROLL=8, num_warps=4),
    ]
    GRAD_INPUT_CONFIGS = [
        dict(BLOCK_CI=64, BLOCK_P=64, UNROLL=4, num_warps=4),
        dict(BLOCK_CI=64, BLOCK_P=64, UNROLL=1, num_warps=4),
        dict(BLOCK_CI=32, BLOCK_P=128, UNROLL=1, num_warps=4),
        dict(BLOCK_CI=64, BLOCK_P=128, UNROLL=1, num_warps=8),
        dict(BLOCK_CI=64, BLOCK_P=128, UNROLL=4, num_warps=8),
        dict(BLOCK_CI=64, BLOCK_P=64, UNROLL=8, num_warps=4),
        dict(BLOCK_CI=32, BLOCK_P=128, UNROLL=8, num_warps=4),
        dict(BLOCK_CI=16, BLOCK_P=128, UNROLL=8, num_warps=4),
    ]
    GRAD_WEIGHT_CONFIGS = [
        dict(BLOCK_CO=64, BLOCK_CI=64, BLOCK_R=32, num_warps=4),
        dict(BLOCK_CO=32, BLOCK_CI=32, BLOCK_R=64, num_warps=4),
        dict(BLOCK_CO=64, BLOCK_CI=64, BLOCK_R=64, num_warps=8),
        dict(BLOCK_CO=128, BLOCK_CI=64, BLOCK_R=32, num_warps=8),
        dict(BLOCK_CO=16, BLOCK_CI=16, BLOCK_R=64, num_warps=4),
    ]
    # float64 (no tl.dot): a 3-D broadcast per step, so small tiles
    GRAD_WEIGHT_FP64_META = dict(BLOCK_CO=16, BLOCK_CI=16, BLOCK_R=16,
                                 num_warps=4)
    # the reduction of the weight gradient is split into chunks of at
    # least this length, and at most MAX_CHUNKS of them
    MIN_CHUNK = 1024
    MAX_CHUNKS = 128
    KEY = ['KEY_CO', 'KEY_CI', 'KEY_P', 'IS_FP64']

    def _autotuned(kernel, configs: List[Dict]):
        return triton.autotune(
            configs=[
                triton.Config({k: v for k, v in c.items() if k != 'num_warps'},
                              num_warps=c['num_warps']) for c in configs
            ],
            key=KEY)(kernel)

    def _use_autotune() -> bool:
        return (not interpreting()
                and os.environ.get('MMPKKD_TRITON_AUTOTUNE', '1') != '0')

    _FWD = _autotuned(K.adder2d_fwd_kernel, FWD_CONFIGS)
    _GRAD_INPUT = _autotuned(K.adder2d_grad_input_kernel, GRAD_INPUT_CONFIGS)
    _GRAD_WEIGHT = _autotuned(K.adder2d_grad_weight_kernel,
                              GRAD_WEIGHT_CONFIGS)

    def _pick(autotuned, plain, configs: List[Dict]) -> Tuple:
        """(kernel, fixed meta-parameters or {} when autotuned)."""
        if _use_autotune():
            return autotuned, {}
        return plain, dict(configs[0])

    def _sizes(geo) -> Tuple:
        kh, kw = geo.kernel
        return (geo.batch, geo.in_channels, geo.height, geo.width,
                geo.out_channels, geo.out_height, geo.out_width, geo.cpg,
                geo.cog, kh, kw, *geo.stride, *geo.padding, *geo.dilation)

    def _keys(geo, positions: int) -> Tuple[int, int, int]:
        return (_next_pow2(geo.cog), _next_pow2(geo.cpg),
                _next_pow2(positions))

    def _cdiv(a: int, b: int) -> int:
        return -(-a // b)

    def _forward(input: torch.Tensor, weight: torch.Tensor,
                 bias: Optional[torch.Tensor], geo) -> torch.Tensor:
        n, g, cog = geo.batch, geo.groups, geo.cog
        out = input.new_empty(
            (n, geo.out_channels, geo.out_height, geo.out_width))
        if out.numel() == 0:
            return out
        if geo.cpg == 0:  # no input channels: every sum is empty
            out.zero_()
            return out if bias is None else out.add_(bias.view(1, -1, 1, 1))
        kh, kw = geo.kernel
        # (G, KH, KW, CPG, COG): the co vector of one (tap, ci) contiguous
        wt = weight.view(g, cog, geo.cpg, kh, kw).permute(0, 3, 4, 2,
                                                          1).contiguous()
        positions = n * geo.out_height * geo.out_width
        kernel, meta = _pick(_FWD, K.adder2d_fwd_kernel, FWD_CONFIGS)

        def grid(m):
            return (_cdiv(positions, m['BLOCK_P']), _cdiv(cog, m['BLOCK_CO']),
                    g)

        wrap_triton(kernel)[grid](
            input, wt, bias if bias is not None else wt, out, *_sizes(geo),
            *input.stride(), *_keys(geo, positions),
            HAS_BIAS=bias is not None,
            IS_FP64=input.dtype == torch.float64, **meta)
        return out

    def _grad_input(grad_out: torch.Tensor, input: torch.Tensor,
                    weight: torch.Tensor, geo) -> torch.Tensor:
        n, g, cog, cpg = geo.batch, geo.groups, geo.cog, geo.cpg
        grad_x = input.new_empty(input.shape)
        if grad_x.numel() == 0:
            return grad_x
        kh, kw = geo.kernel
        # (G, KH, KW, COG, CPG): the ci vector of one (tap, co) contiguous
        wt = weight.view(g, cog, cpg, kh, kw).permute(0, 3, 4, 1,
                                                      2).contiguous()
        pixels = n * geo.height * geo.width
        kernel, meta = _pick(_GRAD_INPUT, K.adder2d_grad_input_kernel,
                             GRAD_INPUT_CONFIGS)

        def grid(m):
            return (_cdiv(pixels, m['BLOCK_P']), _cdiv(cpg, m['BLOCK_CI']), g)

        wrap_triton(kernel)[grid](grad_out, input, wt, grad_x, *_sizes(geo),
                                  *grad_out.stride(), *input.stride(),
                                  *_keys(geo, pixels), **meta)
        return grad_x

    def _num_chunks(total: int, programs: int, device: torch.device) -> int:
        if interpreting() or device.type != 'cuda':
            return 1  # (one program per tile is fastest there)
        sms = torch.cuda.get_device_properties(device).multi_processor_count
        wanted = _cdiv(4 * sms, max(1, programs))
        return max(1, min(wanted, MAX_CHUNKS, total // MIN_CHUNK))

    def _grad_weight(grad_out: torch.Tensor, input: torch.Tensor,
                     weight: torch.Tensor, geo) -> torch.Tensor:
        n, g, cog, cpg = geo.batch, geo.groups, geo.cog, geo.cpg
        kh, kw = geo.kernel
        total = n * geo.out_height * geo.out_width
        if total == 0 or weight.numel() == 0:
            return weight.new_zeros(weight.shape)
        weight = weight.contiguous()
        fp64 = input.dtype == torch.float64
        if fp64:
            kernel, meta = K.adder2d_grad_weight_kernel, dict(
                GRAD_WEIGHT_FP64_META)
        else:
            kernel, meta = _pick(_GRAD_WEIGHT, K.adder2d_grad_weight_kernel,
                                 GRAD_WEIGHT_CONFIGS)
        # programs per chunk with the smallest tile (a lower bound on the
        # parallelism the tiles give; the chunk count must not depend on
        # the autotuned tile, since the workspace is allocated before)
        tiles = kh * kw * _cdiv(cog, 64) * _cdiv(cpg, 64) * g
        chunks = _num_chunks(total, tiles, input.device)
        chunk = _cdiv(total, chunks)
        chunks = _cdiv(total, chunk)
        part = weight.new_empty((chunks, *weight.shape))

        def grid(m):
            return (kh * kw * _cdiv(cog, m['BLOCK_CO']) *
                    _cdiv(cpg, m['BLOCK_CI']), chunks, g)

        wrap_triton(kernel)[grid](grad_out, input, weight, part,
                                  *_sizes(geo), *grad_out.stride(),
                                  *input.stride(), chunk,
                                  *_keys(geo, total), IS_FP64=fp64, **meta)
        return part[0] if chunks == 1 else part.sum(0)

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
