"""Op handles for :class:`mmengine.analysis.FlopAnalyzer`, in our convention.

FlopAnalyzer traces a model, attributes every traced op to the module that
ran it and asks a *handle* per op kind for the op's cost. Its own handles
count one "flop" per multiply-accumulate and leave out residual adds,
pooling windows, activations and the adder op. The handles here return a
``Counter`` with the keys of :data:`COUNT_KEYS` instead, by the rules of
:data:`mmpkkd.analysis.ops_counter.CONVENTION`:

* conv MAC = 1 mult + 1 add; adder MAC = 2 adds + 1 sign op (the abs);
  a bias adds 1 add per output element;
* linear / matmul MAC = 1 mult + 1 add (+ bias);
* BN, GN, LN, IN = 1 mult + 1 add per element;
* ReLU and abs = 1 sign op per element; ReLU6 / hardtanh = 1 sign op +
  1 add (a comparison) per element;
* pooling over a window of ``k``: max = ``k - 1`` adds per output, average
  = ``k - 1`` adds + 1 mult per output;
* element-wise ``+``/``-`` = 1 add, ``*``/``/`` = 1 mult per element.

The handles read shapes from the traced values (``torch._C.Value``) with
mmengine's ``get_shape`` and reuse its MAC formulas where they exist.

Example:
    >>> from mmengine.analysis import FlopAnalyzer
    >>> conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    >>> analyzer = FlopAnalyzer(conv, torch.randn(1, 3, 4, 4))
    >>> analyzer.set_op_handle(**OP_HANDLES).by_operator()  # 8*16 outputs
    Counter({'mults': 3456, 'adds': 3456, 'macs': 3456})
"""
import math
from collections import Counter
from typing import Any, Callable, Dict, List, Optional

from mmengine.analysis.jit_handles import (addmm_flop_jit, conv_flop_jit,
                                           get_shape, linear_flop_jit,
                                           matmul_flop_jit)

#: What every handle counts (see :class:`~mmpkkd.analysis.LayerOps`).
COUNT_KEYS = ('mults', 'adds', 'sign_ops', 'macs')

#: Substring of the traced kind of the adder op, whatever it is called:
#: ``mmpkkd::adder2d`` (the ``torch.library`` op), or
#: ``prim::PythonOp.<Name>`` should it become an autograd Function named
#: after it. :func:`~mmpkkd.analysis.count_ops` binds :func:`adder_handle`
#: to every traced kind containing it (case-insensitive).
ADDER_KIND_PATTERN = 'adder2d'

Handle = Callable[[List[Any], List[Any]], Counter]


def _numel(value) -> Optional[int]:
    """Elements of a traced tensor value; None for a non-tensor."""
    shape = get_shape(value)
    return None if shape is None else math.prod(shape)


def _counts(mults: int = 0, adds: int = 0, sign_ops: int = 0,
            macs: int = 0) -> Counter:
    return Counter(mults=mults, adds=adds, sign_ops=sign_ops, macs=macs)


def _has_tensor(value) -> bool:
    return get_shape(value) is not None


def conv_handle(inputs: List[Any], outputs: List[Any]) -> Counter:
    """``aten::_convolution``: 1 mult + 1 add per MAC, + bias adds."""
    macs = conv_flop_jit(inputs, outputs)['conv']
    bias = _numel(outputs[0]) if _has_tensor(inputs[2]) else 0
    return _counts(mults=macs, adds=macs + bias, macs=macs)


def adder_handle(inputs: List[Any], outputs: List[Any]) -> Counter:
    """The adder op: ``|x - w|`` accumulated = 2 adds + 1 abs per MAC.

    Robust to how the op is traced: the tensor inputs are, in order, the
    input ``(N, C_in, H, W)``, the weight ``(C_out, C_in / g, kH, kW)``
    and an optional bias ``(C_out, )``; everything else (stride, padding,
    ...) is not a tensor.
    """
    shapes = [get_shape(v) for v in inputs if _has_tensor(v)]
    if len(shapes) < 2:
        raise ValueError(
            f'The adder op was traced with tensor inputs {shapes}; expected '
            '(input, weight[, bias]). Update adder_handle in '
            'mmpkkd/analysis/op_handles.py to the new signature.')
    out = _numel(outputs[0])
    macs = out * math.prod(shapes[1][1:])  # each output: C_in/g * kH * kW
    bias = out if len(shapes) > 2 else 0
    return _counts(adds=2 * macs + bias, sign_ops=macs, macs=macs)


def linear_handle(inputs: List[Any], outputs: List[Any]) -> Counter:
    """``aten::linear``: 1 mult + 1 add per MAC, + bias adds."""
    macs = linear_flop_jit(inputs, outputs)
    bias = _numel(outputs[0]) if _has_tensor(inputs[2]) else 0
    return _counts(mults=macs, adds=macs + bias, macs=macs)


def addmm_handle(inputs: List[Any], outputs: List[Any]) -> Counter:
    """``aten::addmm`` (``bias + x @ w``): a linear layer with bias."""
    macs = addmm_flop_jit(inputs, outputs)
    return _counts(mults=macs, adds=macs + _numel(outputs[0]), macs=macs)


def matmul_handle(inputs: List[Any], outputs: List[Any]) -> Counter:
    """``aten::matmul`` / ``aten::mm``: 1 mult + 1 add per MAC."""
    macs = matmul_flop_jit(inputs, outputs)
    return _counts(mults=macs, adds=macs, macs=macs)


def elementwise_handle(mults: int = 0, adds: int = 0,
                       sign_ops: int = 0) -> Handle:
    """Handle counting ``mults``/``adds``/``sign_ops`` per output element.

    An op on non-tensors (shape arithmetic while tracing) counts nothing.
    """

    def handle(inputs: List[Any], outputs: List[Any]) -> Counter:
        n = _numel(outputs[0])
        if n is None:
            return Counter()
        return _counts(mults=mults * n, adds=adds * n, sign_ops=sign_ops * n)

    return handle


def _window(inputs: List[Any], outputs: List[Any], adaptive: bool) -> int:
    """Elements per pooling window: the kernel size, or for adaptive
    pooling the input/output size ratio."""
    if adaptive:
        return max(_numel(inputs[0]) // max(_numel(outputs[0]), 1), 1)
    kernel = inputs[1].toIValue()
    if kernel is None:  # a list built in the graph from constants
        kernel = [v.toIValue() for v in inputs[1].node().inputs()]
    kernel = [kernel] if isinstance(kernel, int) else list(kernel)
    if len(kernel) == 1:  # one size for every spatial dimension
        kernel *= len(get_shape(outputs[0])) - 2
    return math.prod(kernel)


def pool_handle(average: bool, adaptive: bool = False) -> Handle:
    """Max pooling: ``k - 1`` comparisons (adds) per output; average
    pooling: ``k - 1`` adds + 1 mult (by ``1 / k``) per output."""

    def handle(inputs: List[Any], outputs: List[Any]) -> Counter:
        out = _numel(outputs[0])
        k = _window(inputs, outputs, adaptive)
        return _counts(mults=out if average else 0, adds=out * (k - 1))

    return handle


def _kinds(names: str, handle: Handle) -> Dict[str, Handle]:
    return {f'aten::{name}': handle for name in names.split()}


#: Handles by traced op kind, for ``FlopAnalyzer.set_op_handle(**...)``.
OP_HANDLES: Dict[str, Handle] = {
    'aten::_convolution': conv_handle,
    'aten::linear': linear_handle,
    'aten::addmm': addmm_handle,
    **_kinds('matmul mm', matmul_handle),
    **_kinds('batch_norm group_norm layer_norm instance_norm',
             elementwise_handle(mults=1, adds=1)),
    **_kinds('relu relu_ abs abs_', elementwise_handle(sign_ops=1)),
    **_kinds('hardtanh hardtanh_', elementwise_handle(adds=1, sign_ops=1)),
    **_kinds('add add_ sub sub_ rsub', elementwise_handle(adds=1)),
    **_kinds('mul mul_ div div_', elementwise_handle(mults=1)),
    **_kinds('max_pool1d max_pool2d max_pool3d', pool_handle(False)),
    **_kinds('avg_pool1d avg_pool2d avg_pool3d', pool_handle(True)),
    **_kinds('adaptive_max_pool1d adaptive_max_pool2d adaptive_max_pool3d',
             pool_handle(False, adaptive=True)),
    **_kinds('adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d',
             pool_handle(True, adaptive=True)),
    # the adder op; another kind containing ADDER_KIND_PATTERN is bound by
    # count_ops when it is traced
    'mmpkkd::adder2d': adder_handle,
}
