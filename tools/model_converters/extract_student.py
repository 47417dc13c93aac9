"""Extract the ANN student of a PKKD checkpoint as a plain classifier.

The output holds only the student's weights (no teacher, no connectors),
under the key names of a plain ``ImageClassifier``, so it loads into the ANN
config (e.g. ``configs/ann/ann_resnet20_1xb64-15e_digits.py``) for
``tools/test.py`` or as ``load_from`` for fine-tuning. The output may not
be the input file.

Example:
    python tools/model_converters/extract_student.py \\
        work_dirs/pkkd/epoch_15.pth work_dirs/pkkd/student.pth
    python tools/test.py configs/ann/ann_resnet20_1xb64-15e_digits.py \\
        work_dirs/pkkd/student.pth
"""
import argparse
import io
import os.path as osp


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Save the ANN student of a PKKD checkpoint.')
    parser.add_argument('checkpoint', help='PKKD checkpoint (epoch_*.pth, '
                        'or a URL: read weights-only)')
    parser.add_argument('out', help='output file for the student (not the '
                        'input file)')
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of an error')
    return parser.parse_args(argv)


def extract(args: argparse.Namespace) -> None:
    import torch

    from mmpkkd.engine.checkpoint import (atomic_write, extract_student,
                                         has_scheme, read_checkpoint)
    from mmpkkd.utils import (USAGE_EXIT, UserError, check_output_path,
                              make_parent)
    from mmpkkd.utils.config import missing_file_message
    if not has_scheme(args.checkpoint) and not osp.isfile(args.checkpoint):
        raise UserError(missing_file_message(args.checkpoint, 'checkpoint'),
                        USAGE_EXIT)
    check_output_path(args.out, [args.checkpoint], option='OUT')
    student = extract_student(read_checkpoint(args.checkpoint))
    buffer = io.BytesIO()
    torch.save(student, buffer)
    atomic_write(buffer.getvalue(), make_parent(args.out))
    print(f'Saved {len(student["state_dict"])} student tensors to '
          f'{args.out}')


def main(argv=None):
    """Run the tool; errors propagate (for use from Python)."""
    args = parse_args(argv)
    import mmpkkd  # noqa: F401  (registers all modules; after --help)
    return extract(args)


if __name__ == '__main__':
    cli_args = parse_args()  # --help ends here, before torch loads
    from mmpkkd.utils import run_tool  # noqa: E402
    run_tool(extract, cli_args, 'extract_student.py')
