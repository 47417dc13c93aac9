"""Histograms of a PKKD pair's distilled features and of its weights.

For each distilled layer pair (default: all ``layer_pairs`` of the config)
it writes ``features_<layer>.png`` with two panels: the raw outputs of the
teacher (CNN conv) and the student (ANN adder), on one x axis each; and
the kernel-mapped features that ``L_mid`` compares (teacher after the
Gaussian kernel, student after the Laplace kernel and its 1x1 connector).
``weights.png`` compares the ANN adder weights with the CNN conv weights
(raw, and standardised against Gaussian and Laplace densities). Inputs are
the first ``--num-images`` images of the config's test set.

Examples::

    python tools/visualization/visualize_features.py \\
        configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py \\
        work_dirs/pkkd_resnet20_1xb64-15e_digits/epoch_15.pth
    python tools/visualization/visualize_features.py \\
        configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py CKPT \\
        --layers layer3.2.conv2 --weights all --out-dir work_dirs/vis
"""
import argparse


def parse_args(argv=None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Feature and weight histograms (teacher CNN vs student '
        'ANN) of a PKKD checkpoint, one PNG per distilled layer.',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('config', help='PKKD config file (configs/pkkd/)')
    parser.add_argument('checkpoint', help='distiller checkpoint (.pth)')
    parser.add_argument(
        '--layers', nargs='+', metavar='NAME',
        help='distilled layers to draw, by student or teacher module name '
        'or a dotted suffix (layer1.2.conv2); default: all layer pairs')
    parser.add_argument('--out-dir', default='work_dirs/feature_vis',
                        help='folder of the PNGs (default: %(default)s)')
    parser.add_argument('--num-images', type=int, default=64,
                        help='test images fed to both networks '
                        '(default: %(default)s)')
    parser.add_argument(
        '--weights', choices=('distilled', 'all'), default='distilled',
        help='weights pooled in weights.png: the distilled layers, or all '
        'adder layers and their teacher twins (default: %(default)s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings')
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of an error')
    return parser.parse_args(argv)


def visualize(args: argparse.Namespace):
    """Draw the figures of ``args``."""
    import os.path as osp

    from mmpkkd.visualization import visualize_features
    from mmpkkd.utils import USAGE_EXIT, UserError
    from mmpkkd.utils.config import missing_file_message
    for path, what in ((args.config, 'config'),
                       (args.checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            raise UserError(missing_file_message(path, what), USAGE_EXIT)
    if osp.exists(args.out_dir) and not osp.isdir(args.out_dir):
        raise UserError(f'--out-dir {args.out_dir} is a file, not a folder.',
                        USAGE_EXIT)
    if args.num_images < 1:
        raise UserError(f'--num-images must be at least 1, got '
                        f'{args.num_images}.', USAGE_EXIT)

    figures = visualize_features(
        args.config, args.checkpoint, args.out_dir, layers=args.layers,
        num_images=args.num_images, weights=args.weights,
        cfg_options=args.cfg_options)
    for name, info in figures.layers.items():
        print(f'{name}: {info.path}')
    print(f'weights: {figures.weights.path}')
    return figures


def main(argv=None):
    """Run the tool; errors propagate (for use from Python)."""
    return visualize(parse_args(argv))


if __name__ == '__main__':
    cli_args = parse_args()  # --help ends here, before torch loads
    from mmpkkd.utils import run_tool  # noqa: E402
    run_tool(visualize, cli_args, 'visualize_features.py')
