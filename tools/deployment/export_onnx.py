"""Export a classifier (CNN, ANN, or a PKKD student) to ONNX.

The graph takes the tensor that ``model(x, mode='tensor')`` takes -- the
preprocessed (normalised) NCHW float32 batch -- and returns the logits. The
batch dimension is dynamic; channels and spatial size are those of
``--shape``. Adder layers are written with standard ONNX operators (any
runtime runs the file; memory cost in docs/compile_export.md) or, with
``--adder-form custom``, as ``mmpkkd.Adder2d`` nodes for a runtime with a
plugin (:mod:`mmpkkd.ops.onnx_export`).

CONFIG is the config of the classifier; for a PKKD checkpoint it may be the
PKKD config (its student is exported) or the matching ANN config. The
student is taken out of a PKKD checkpoint with
``mmpkkd.models.distillers.extract_student`` (what
``tools/model_converters/extract_student.py`` saves).

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


def classifier_config(model_cfg: dict) -> dict:
    """The classifier of a config: the student of a PKKD config."""
    if 'student' in model_cfg and 'teacher' in model_cfg:
        return model_cfg['student']
    return model_cfg


def classifier_state_dict(checkpoint: dict) -> dict:
    """The weights of a plain classifier, or the student of a PKKD one."""
    from mmpkkd.models.distillers import STUDENT_PREFIX, extract_student
    state = checkpoint.get('state_dict', checkpoint)
    if any(key.startswith(STUDENT_PREFIX) for key in state):
        return extract_student(checkpoint)['state_dict']
    return state


def load_classifier(config: str, checkpoint: str,
                    cfg_options: dict = None):
    """Build the classifier of ``config`` with the weights of
    ``checkpoint`` (strict: every weight must match), in eval mode."""
    from mmengine.registry import DefaultScope

    from mmpkkd.registry import MODELS
    from mmpkkd.utils import read_checkpoint, read_config
    cfg = read_config(config, cfg_options)
    with DefaultScope.overwrite_default_scope('mmpkkd'):
        model = MODELS.build(classifier_config(cfg.model))
    state = classifier_state_dict(read_checkpoint(checkpoint))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise KeyError(
            f'{checkpoint} does not fit the classifier of {config}: missing '
            f'{sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]} '
            '(first five each). Pass the config the checkpoint was trained '
            'with (for a PKKD checkpoint: the PKKD or the ANN config).')
    return model.eval()


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
    import torch.nn as nn

    from mmpkkd.ops.onnx_export import ADDER_FORMS, MIN_OPSET, export_onnx
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

    class ClassifierLogits(nn.Module):
        """``classifier(x, mode='tensor')``: preprocessed batch -> logits."""

        def __init__(self, classifier: nn.Module):
            super().__init__()
            self.classifier = classifier

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.classifier(x, mode='tensor')

    model = ClassifierLogits(
        load_classifier(args.config, args.checkpoint, args.cfg_options))
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
    cli_args = parse_args()
    import mmpkkd  # noqa: F401,E402  (after --help: keeps it quick)
    from mmpkkd.utils import report_errors  # noqa: E402
    with report_errors('export_onnx.py', cli_args.debug or None):
        export(cli_args)
