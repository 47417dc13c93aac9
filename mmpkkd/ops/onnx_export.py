"""ONNX export of networks that contain ``torch.ops.mmpkkd.adder2d``.

:func:`export_onnx` runs ``torch.onnx.export`` (the ``torch.export``-based
exporter) with a translation of the adder op in one of two forms:

* ``'standard'`` (default): only standard ONNX operators, so any ONNX
  runtime can run the file. Per adder layer::

      cols = Conv(X, E, group=C_in)          # im2col: E holds one-hot filters
      Y    = -ReduceSum(Abs(cols[:, g, None] - W[None, g, :, :, None]), K)

  ``E`` is a constant ``(C_in*kH*kW, 1, kH, kW)`` one-hot tensor, so the
  Conv copies every tap of the (zero-padded, strided, dilated) window into
  its own channel, exactly (products with 1 and 0). The price is memory: the
  ``Sub``/``Abs`` temporaries have ``N * C_out * K * H_out * W_out``
  elements per layer (``K = C_in/groups * kH * kW``, the layer's adder-MAC
  count), as in the original AdderNet code; a runtime may reuse one buffer
  for both.
* ``'custom'``: one node ``mmpkkd.Adder2d`` (domain ``mmpkkd``, version 1;
  see :func:`adder2d_onnx_schema`) per layer, for a runtime that gets a
  plugin (kernel) for it; no temporaries beyond the runtime's own.

The batch dimension is dynamic; the spatial size is the example's.
"""
from typing import Callable, Dict, Sequence

import numpy as np
import torch

from ._args import conv_output_size

ADDER2D_DOMAIN = 'mmpkkd'
ADDER2D_DOMAIN_VERSION = 1
ADDER_FORMS = ('standard', 'custom')
MIN_OPSET = 18  # the opset torch.onnx's exporter writes (ReduceSum axes input)


def adder2d_onnx_schema():
    """The ``onnx.defs.OpSchema`` of the custom node ``mmpkkd.Adder2d``.

    Inputs ``X`` (N, C_in, H, W), ``W`` (C_out, C_in/group, kH, kW),
    optional ``B`` (C_out,); output ``Y`` (N, C_out, H_out, W_out) with
    ``Y = -sum |X_patch - W| + B``. Attributes as ONNX ``Conv``:
    ``strides`` (2), ``pads`` (4: top, left, bottom, right, zero padding),
    ``dilations`` (2), ``group``.
    """
    from onnx.defs import OpSchema
    param = OpSchema.FormalParameter
    attr = OpSchema.Attribute
    return OpSchema(
        'Adder2d',
        ADDER2D_DOMAIN,
        ADDER2D_DOMAIN_VERSION,
        doc='AdderNet layer: Y = -sum |X_patch - W| (+ B), zero padding.',
        inputs=[
            param('X', 'T'),
            param('W', 'T'),
            param('B', 'T', param_option=OpSchema.FormalParameterOption.
                  Optional),
        ],
        outputs=[param('Y', 'T')],
        type_constraints=[('T', ['tensor(float)'], 'float32 tensors')],
        attributes=[
            attr('strides', OpSchema.AttrType.INTS, 'stride (h, w)'),
            attr('pads', OpSchema.AttrType.INTS,
                 'zero padding (top, left, bottom, right)'),
            attr('dilations', OpSchema.AttrType.INTS, 'dilation (h, w)'),
            attr('group', OpSchema.AttrType.INT, 'channel groups'),
        ])


def _static_dims(value, what: str) -> Sequence[int]:
    dims = list(value.shape)
    if not all(isinstance(d, int) for d in dims[1:]):
        raise ValueError(
            f'ONNX export of adder2d needs a static {what} shape except the '
            f'batch dimension, got {dims}')
    return dims


def _standard_translation(opset: int) -> Callable:
    import onnx
    from onnxscript import values
    op = values.Opset('', opset)

    def adder2d(input, weight, bias, stride, padding, dilation, groups):
        _, c_in, height, width = _static_dims(input, 'input')
        c_out, cpg, kh, kw = _static_dims(weight, 'weight')
        ho = conv_output_size(height, kh, stride[0], padding[0], dilation[0])
        wo = conv_output_size(width, kw, stride[1], padding[1], dilation[1])
        taps, cog = kh * kw, c_out // groups
        k = cpg * taps
        onehot = np.eye(taps, dtype=np.float32).reshape(taps, 1, kh, kw)
        filters = onnx.numpy_helper.from_array(
            np.tile(onehot, (c_in, 1, 1, 1)), 'adder2d_im2col')
        cols = op.Conv(
            input,
            op.Constant(value=filters),
            group=c_in,
            strides=list(stride),
            pads=[padding[0], padding[1], padding[0], padding[1]],
            dilations=list(dilation))  # (N, C_in * taps, H_out, W_out)
        cols = op.Reshape(cols,
                          op.Constant(value_ints=[0, groups, 1, k, ho * wo]))
        w = op.Reshape(weight, op.Constant(value_ints=[1, groups, cog, k, 1]))
        dist = op.ReduceSum(
            op.Abs(op.Sub(cols, w)), op.Constant(value_ints=[3]), keepdims=0)
        out = op.Reshape(
            op.Neg(dist), op.Constant(value_ints=[0, c_out, ho, wo]))
        if bias is not None:
            out = op.Add(out,
                         op.Reshape(bias, op.Constant(value_ints=[1, c_out,
                                                                  1, 1])))
        return out

    return adder2d


def _custom_translation() -> Callable:
    from onnxscript import values
    node = values.Op(
        values.Opset(ADDER2D_DOMAIN, ADDER2D_DOMAIN_VERSION), 'Adder2d',
        adder2d_onnx_schema())

    def adder2d(input, weight, bias, stride, padding, dilation, groups):
        inputs = [input, weight] + ([bias] if bias is not None else [])
        return node(
            *inputs,
            strides=list(stride),
            pads=[padding[0], padding[1], padding[0], padding[1]],
            dilations=list(dilation),
            group=groups)

    return adder2d


def adder2d_translation_table(opset: int = MIN_OPSET,
                              form: str = 'standard') -> Dict:
    """``custom_translation_table`` for ``torch.onnx.export``."""
    if form not in ADDER_FORMS:
        raise ValueError(f'adder form must be one of {ADDER_FORMS}, got '
                         f'{form!r}')
    fn = (_standard_translation(opset)
          if form == 'standard' else _custom_translation())
    return {torch.ops.mmpkkd.adder2d.default: fn}


def export_onnx(module: torch.nn.Module,
                example: torch.Tensor,
                out: str,
                opset: int = MIN_OPSET,
                form: str = 'standard') -> None:
    """Export ``module(example)`` to the ONNX file ``out``.

    Args:
        module: takes one float32 NCHW tensor, returns one tensor; its adder
            layers call :func:`mmpkkd.ops.adder2d`. Exported in eval mode.
        example: an input; its batch size is not baked in (dynamic ``batch``
            dimension), its other dimensions are.
        out: the ``.onnx`` file to write (weights inside it).
        opset: ONNX opset of the standard operators, >= 18.
        form: ``'standard'`` or ``'custom'`` (see the module docstring).

    Example:
        >>> from mmpkkd.models.layers import Adder2d
        >>> layer = Adder2d(3, 8, 3, padding=1)
        >>> export_onnx(layer, torch.randn(2, 3, 8, 8), 'adder.onnx')
    """
    if opset < MIN_OPSET:
        raise ValueError(f'opset {opset} is too old: torch.onnx writes '
                         f'opset >= {MIN_OPSET}; pass --opset {MIN_OPSET} '
                         'or newer')
    if example.dim() != 4 or example.dtype != torch.float32:
        raise ValueError('example must be a float32 (N, C, H, W) tensor, got '
                         f'{example.dtype} {tuple(example.shape)}')
    if example.shape[0] == 1:
        # torch.export specialises a size-1 dimension to a constant; trace
        # with two copies so the batch stays symbolic
        example = example.expand(2, -1, -1, -1).contiguous()
    was_training = module.training
    module.eval()
    try:
        program = torch.onnx.export(
            module, (example, ),
            dynamo=True,
            opset_version=opset,
            input_names=['input'],
            output_names=['output'],
            dynamic_shapes=({0: torch.export.Dim('batch')}, ),
            custom_translation_table=adder2d_translation_table(opset, form),
            external_data=False)
        program.save(out)
    finally:
        module.train(was_training)
