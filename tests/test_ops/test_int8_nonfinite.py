"""Int8's policy for values without a code: NaN and infinities are refused.

The same ValueError from the native fused kernel, the pure-PyTorch
fallback and ``quantize_per_tensor_int8``, wherever the value sits in the
input: in the vectorised part of a row, its 4-wide or scalar tail, another
image of the batch, or a row that no output reads. Finite values beyond the
grid, however large, still saturate to -128 / 127, identically on both
paths.
"""
import pytest
import torch

from mmpkkd.ops import int8 as int8_ops
from mmpkkd.ops._library import NATIVE_INT8

POLICY = 'int8 has no code for NaN or infinity'

needs_native = pytest.mark.skipif(
    not NATIVE_INT8, reason='mmpkkd._ext without the int8 kernels')

#: rows of 23 floats: 16 vectorised, 4 in the 4-wide tail, 3 scalar
SHAPE = (2, 3, 6, 23)
#: (n, c, h, w): vector part, 4-wide tail, scalar tail, second image
PLACES = [(0, 0, 0, 5), (0, 1, 2, 17), (0, 2, 5, 22), (1, 2, 3, 0)]
VALUES = {'nan': float('nan'), '+inf': float('inf'), '-inf': float('-inf')}


def layer_args(gen: torch.Generator):
    w = torch.randint(-128, 128, (4, 3, 3, 3), generator=gen,
                      dtype=torch.int8)
    return w, 10.0, -3, torch.rand(4, generator=gen), torch.randn(
        4, generator=gen)


def affine(x, native: bool, stride=1, padding=1):
    """The op (native kernels) or its pure-PyTorch fallback."""
    w, inv_scale, zero_point, alpha, beta = layer_args(
        torch.Generator().manual_seed(0))
    op = (int8_ops.adder2d_int8_affine if native else
          int8_ops.adder2d_int8_affine_reference)
    return op(x, w, inv_scale, zero_point, alpha, beta, stride, padding)


def paths():
    return [pytest.param(True, marks=needs_native, id='native'),
            pytest.param(False, id='fallback')]


@pytest.mark.parametrize('native', paths())
@pytest.mark.parametrize('place', PLACES, ids=str)
@pytest.mark.parametrize('value', VALUES, ids=str)
def test_fused_op_refuses_non_finite_input(native, place, value):
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1))
    affine(x, native)  # finite: runs
    x[place] = VALUES[value]
    nan, inf = (1, 0) if value == 'nan' else (0, 1)
    with pytest.raises(ValueError, match=POLICY) as err:
        affine(x, native)
    assert str(err.value).startswith(
        f'adder2d_int8_affine: the input holds {nan} NaN and {inf} '
        f'infinite value(s) among {x.numel()};')


@pytest.mark.parametrize('native', paths())
def test_a_row_no_output_reads_is_checked_too(native):
    """3x3 kernel, stride 2, no padding on 6 rows: the two output rows read
    input rows 0-4; the native op never packs row 5."""
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(2))
    x[0, 1, 5, 3] = float('nan')
    geometry = dict(stride=2, padding=0)
    with pytest.raises(ValueError, match=POLICY):
        affine(x, native, **geometry)
    # and that row really is unread: a finite change there changes nothing
    finite = x.nan_to_num(0.0)
    y = affine(finite, native, **geometry)
    finite[0, 1, 5] += 50
    assert torch.equal(affine(finite, native, **geometry), y)


@pytest.mark.parametrize('value', VALUES, ids=str)
def test_quantize_per_tensor_int8_refuses_non_finite(value):
    x = torch.tensor([0.5, VALUES[value], 2.0])
    with pytest.raises(ValueError, match=POLICY):
        int8_ops.quantize_per_tensor_int8(x, 10.0, 0)


@needs_native
def test_huge_finite_values_saturate_alike():
    """3e38 * inv_scale overflows float32 to inf inside the quantisation:
    still a finite input, so it saturates to 127 (and -3e38 to -128) on
    both paths."""
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(3))
    x[0, 0, 0, :3] = torch.tensor([3e38, -3e38, 1e6])
    x[1, 2, 4, 21] = -3e38
    q = int8_ops.quantize_per_tensor_int8(x, 10.0, -3)
    assert q[0, 0, 0, :3].tolist() == [127, -128, 127]
    native = affine(x, True)
    fallback = affine(x, False)
    torch.testing.assert_close(native, fallback, rtol=1e-6, atol=1e-4)
