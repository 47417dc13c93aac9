"""Count multiplications, additions, parameters and energy, CNN vs ANN.

For a config the tool reports the network and its twin side by side: an
adder (ANN) config with its CNN twin, built from the same model config with
every adder layer as a conv and a plain linear head; a PKKD config
(``configs/pkkd/``) with its CNN teacher and ANN student; a CNN config alone,
or with the network of ``--twin``. Every leaf layer is counted from the
shapes it sees in one forward pass of one image (no per-network tables).
Counting convention:

* conv MAC = 1 mult + 1 add; adder MAC (``|x - w|`` accumulated) = 2 adds
  (subtract, accumulate) + 1 abs. The abs and ReLU are sign-bit operations,
  listed in their own column and given no energy;
* BN = 1 mult + 1 add per element (inference affine; adder nets keep BN);
  bias = 1 add per output; linear = 1 mult + 1 add per MAC; pooling and
  residual additions are counted too;
* energy, 45 nm (Horowitz 2014): fp32 add 0.9 pJ, mult 3.7 pJ; int32 add
  0.1 pJ, mult 3.1 pJ; int8 add 0.03 pJ, mult 0.2 pJ (every operation
  priced at 8 bits, accumulators included: a lower bound for an int8 net).

Examples::

    python tools/analysis_tools/count_ops.py \\
        configs/ann/ann_resnet20_1xb256-400e_cifar10.py
    python tools/analysis_tools/count_ops.py \\
        configs/pkkd/pkkd_resnet18_8xb32-150e_in1k.py \\
        --out work_dirs/ops_r18.md
"""
import argparse
import os.path as osp


def parse_args(argv=None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Multiplications, additions, parameters and 45 nm '
        'energy of a config and its CNN/ANN twin, per layer and in total '
        '(markdown).',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('config', help='config file (configs/ann, '
                        'configs/cnn or configs/pkkd)')
    parser.add_argument(
        '--shape', type=int, nargs=3, metavar=('C', 'H', 'W'),
        help='input image shape; default: the crop size of the config\'s '
        'test pipeline, else 3 32 32')
    parser.add_argument('--out', help='also write the markdown report here')
    parser.add_argument('--twin', help='config to compare with instead of '
                        'the CNN twin derived from CONFIG')
    parser.add_argument('--no-twin', action='store_true',
                        help='report the config\'s own network(s) only')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of CONFIG (not of the twin), e.g. '
        'model.backbone.depth=32')
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of an error')
    return parser.parse_args(argv)


def report(args: argparse.Namespace) -> str:
    """Count, print and optionally write the report of ``args``."""
    from mmpkkd.analysis import (count_ops, default_input_shape,
                                 format_markdown, networks_to_compare)
    from mmpkkd.utils import (USAGE_EXIT, UserError, check_output_path,
                              read_config)
    from mmpkkd.utils.config import missing_file_message
    for path in (args.config, args.twin):
        if path is not None and not osp.isfile(path):
            raise UserError(missing_file_message(path, 'config'), USAGE_EXIT)
    if args.twin and args.no_twin:
        raise UserError('--twin and --no-twin contradict each other.',
                        USAGE_EXIT)
    if args.out:
        check_output_path(args.out, [args.config, args.twin])

    shape = tuple(args.shape) if args.shape else default_input_shape(
        read_config(args.config, args.cfg_options))
    networks, notes = networks_to_compare(
        args.config, twin=args.twin, with_twin=not args.no_twin,
        cfg_options=args.cfg_options)
    reports = [count_ops(n.model, shape, label=n.label) for n in networks]
    notes = [f'{n.label} = {n.source}' for n in networks] + notes
    text = format_markdown(
        reports, title=f'Operations of {args.config}', notes=notes)
    print(text, end='')
    if args.out:
        import mmengine
        mmengine.mkdir_or_exist(osp.dirname(osp.abspath(args.out)))
        with open(args.out, 'w') as f:
            f.write(text)
        print(f'Report written to {args.out}')
    return text


def main(argv=None) -> str:
    """Run the tool; errors propagate (for use from Python)."""
    return report(parse_args(argv))


if __name__ == '__main__':
    cli_args = parse_args()  # --help ends here, before torch loads
    from mmpkkd.utils import run_tool  # noqa: E402
    run_tool(report, cli_args, 'count_ops.py')
