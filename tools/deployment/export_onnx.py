"""Export a classifier (CNN, ANN, or a PKKD student) to ONNX.

The graph takes the tensor that ``model(x, mode='tensor')`` takes -- the
preprocessed (normalised) NCHW float32 batch -- and returns the logits. The
batch dimension is dynamic; channels and spatial size are those of
``--shape``. Adder layers are written with standard ONNX operators (any
runtime runs the file; memory cost in
docs/user_guides/compile_export.md) or, with ``--adder-form custom``, as
``mmpkkd.Adder2d`` nodes for a runtime with a plugin
(:mod:`mmpkkd.ops.onnx_export`).

CONFIG is the config of the classifier; for a PKKD checkpoint it may be the
PKKD config (its student is exported) or the matching ANN config. The
model is :func:`mmpkkd.apis.get_model` with ``student=True`` (a PKKD
checkpoint gives its ``student.*`` weights; every weight must fit) in
:class:`mmpkkd.apis.TensorModeWrapper`.

Example::

    python tools/deployment/export_onnx.py \\
        configs/ann/ann_resnet20_1xb256-400e_cifar10.py \\
        work_dirs/ann/epoch_400.pth --out ann_r20.onnx --shape 1 3 32 32
    python tools/deployment/export_onnx.py \\
        configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py \\
        work_dirs/pkkd/epoch_15.pth --out student.onnx --shape 8 3 32 32
"""
import argparse
import os.path as osp

from mmengine.config import DictAction  # light: no torch


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export a classifier (CNN, ANN, PKKD student) to ONNX.')
    parser.add_argument('config', help='classifier or PKKD config')
    parser.add_argument('checkpoint', help='checkpoint (.pth)')
    parser.add_argument('--out', required=True, help='output .onnx file')
    parser.add_argument(
        '--shape', type=int, nargs=4, default=[1, 3, 32, 32],
        metavar=('N', 'C', 'H', 'W'),
        help='example input shape; N is dynamic in the file, C/H/W fixed '
        '(default: 1 3 32 32)')
    parser.add_argument('--opset', type=int,
                        help='ONNX opset (default and minimum: the opset '
                        'the adder export needs, '
                        'mmpkkd.ops.onnx_export.MIN_OPSET)')
    parser.add_argument(
        '--adder-form', default='standard', metavar='{standard,custom}',
        help='standard: plain ONNX operators (any runtime; memory grows '
        'with the MAC count); custom: mmpkkd.Adder2d nodes (needs a runtime '
        'plugin)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries (key=value); a key '
                        'the config does not have is an error')
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of an error')
    return parser.parse_args(argv)


def export(args: argparse.Namespace) -> None:
    """Check the paths, load the classifier, write the ONNX file."""
    import torch

    from mmpkkd.apis import TensorModeWrapper, get_model
    from mmpkkd.ops.onnx_export import ADDER_FORMS, MIN_OPSET, export_onnx
    from mmpkkd.quantization import int8_layers
    from mmpkkd.utils import (USAGE_EXIT, UserError, check_output_path,
                              make_parent)
    from mmpkkd.utils.config import missing_file_message
    if not osp.isfile(args.checkpoint):
        raise UserError(missing_file_message(args.checkpoint, 'checkpoint'),
                        USAGE_EXIT)
    if args.opset is None:
        args.opset = MIN_OPSET
    if args.opset < MIN_OPSET:
        raise UserError(f'--opset {args.opset}: the adder export needs '
                        f'opset {MIN_OPSET} or newer.', USAGE_EXIT)
    if args.adder_form not in ADDER_FORMS:
        raise UserError(f'--adder-form {args.adder_form}: choose one of '
                        f'{", ".join(ADDER_FORMS)}.', USAGE_EXIT)
    check_output_path(args.out, [args.config, args.checkpoint])
    classifier = get_model(args.config, args.checkpoint, student=True,
                           cfg_options=args.cfg_options)
    if int8_layers(classifier):
        raise UserError(
            f'{args.checkpoint} is an int8 model, which has no ONNX form '
            'here; export the float checkpoint it was quantised from.')
    model = TensorModeWrapper(classifier)
    example = torch.randn(*args.shape)
    export_onnx(model, example, make_parent(args.out), opset=args.opset,
                form=args.adder_form)
    print(f'Exported {args.config} ({args.adder_form} adder form, opset '
          f'{args.opset}, input (batch, {args.shape[1]}, {args.shape[2]}, '
          f'{args.shape[3]})) to {args.out}')


def main(argv=None) -> None:
    """Run the tool; errors propagate (for use from Python)."""
    args = parse_args(argv)
    import mmpkkd  # noqa: F401  (registers modules; after --help)
    export(args)


if __name__ == '__main__':
    cli_args = parse_args()  # --help ends here, before torch loads
    from mmpkkd.utils import run_tool  # noqa: E402
    run_tool(export, cli_args, 'export_onnx.py')
