"""Plot the accuracy and loss curves of a training from its scalars.json.

Reads ``WORK_DIR/<timestamp>/vis_data/scalars.json`` (all runs of the work
dir, merged in time order; ``--latest`` for the last one only) and writes
one PNG with two panels: validation accuracy vs epoch (student and teacher
for a PKKD run, ``accuracy/top1`` alone for a classifier) and the training
loss terms (``loss`` and, for PKKD, ``teacher.loss_cls``,
``student.loss_cls``, ``student.loss_kd``, ``student.loss_mid``).

Examples::

    python tools/visualization/plot_curves.py \\
        work_dirs/pkkd_resnet20_1xb64-15e_digits
    python tools/visualization/plot_curves.py work_dirs/demo/pkkd_seed0 \\
        --out work_dirs/demo/pkkd_seed0_curves.png
"""
import argparse
import os.path as osp


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Validation accuracy and training losses of a work dir '
        '(2 panels, PNG).',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('work_dir', help='work dir of a training (or one '
                        'run folder, or a scalars.json file)')
    parser.add_argument('--out', help='PNG to write (default: '
                        'WORK_DIR/curves.png)')
    parser.add_argument('--latest', action='store_true',
                        help='plot the latest run only instead of merging '
                        'all runs of the work dir')
    parser.add_argument('--title', help='figure title (default: WORK_DIR)')
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of an error')
    return parser.parse_args(argv)


def plot(args: argparse.Namespace):
    """Read the curves of ``args.work_dir`` and write the PNG."""
    from mmpkkd.visualization import load_curves, plot_curves
    from mmpkkd.utils import USAGE_EXIT, UserError, check_output_path
    if not osp.exists(args.work_dir):
        raise UserError(f'{args.work_dir} does not exist; pass the work dir '
                        'of a training (or a scalars.json file).',
                        USAGE_EXIT)

    curves = load_curves(args.work_dir, latest_only=args.latest)
    out = args.out or osp.join(
        args.work_dir if osp.isdir(args.work_dir) else
        osp.dirname(args.work_dir), 'curves.png')
    check_output_path(out)
    info = plot_curves(curves, out, title=args.title or args.work_dir)
    print(f'{len(curves.runs)} run(s) -> {info.path}')
    return info


def main(argv=None):
    """Run the tool; errors propagate (for use from Python)."""
    return plot(parse_args(argv))


if __name__ == '__main__':
    cli_args = parse_args()  # --help ends here, before torch loads
    from mmpkkd.utils import run_tool  # noqa: E402
    run_tool(plot, cli_args, 'plot_curves.py')
