"""Each student loss term's share of the gradient, for any distiller config.

Trains the config's distiller for ``--iters`` iterations (as
``tools/train.py`` would, first epoch's learning rate) and prints, at
initialisation and at ``--every`` iterations, each student loss term's
value and its share of the gradient on the student's conv/adder weights
(the same figures training logs as ``student.grad_share.<term>``). Then
splits the decrease of ``L_mid`` into what the student-side connectors did
by themselves and what the student's features did. Use it to put ``beta``
(``model.loss_mid.loss_weight``) and ``alpha`` on the scale where each term
acts (configs/pkkd/README.md, "Balancing the terms").

Example::

    python tools/analysis_tools/distill_balance.py \\
        configs/pkkd/pkkd_resnet20_1xb128-15e_fashionmnist.py --iters 60 \\
        --cfg-options model.loss_mid.loss_weight=10
"""
import argparse
import json
from typing import Dict

from mmengine.config import DictAction
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope

from mmpkkd.analysis.distill_balance import (format_table, mid_attribution,
                                             train_and_measure)
from mmpkkd.utils import (USAGE_EXIT, UserError, add_debug_arg,
                          check_output_path, make_parent, read_config,
                          run_tool)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--iters', type=int, default=60,
                        help='training iterations (default 60)')
    parser.add_argument('--every', type=int, default=20,
                        help='measure every N iterations (and at 1)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', help='also write the figures here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    add_debug_arg(parser)
    return parser.parse_args(argv)


def report(args: argparse.Namespace) -> Dict:
    """Check the inputs, train, print and optionally save the figures."""
    if args.iters < 1 or args.every < 1:
        raise UserError(
            f'--iters and --every must be >= 1, got {args.iters} and '
            f'{args.every}.', USAGE_EXIT)
    if args.json:
        check_output_path(args.json, [args.config], option='--json')
    cfg = read_config(args.config, args.cfg_options)
    if cfg.model.get('type') != 'PKKDDistiller':
        raise UserError(
            f'{args.config} builds a {cfg.model.get("type")}, not a '
            'distiller; give a PKKD config (configs/pkkd/...).', USAGE_EXIT)
    # MMEngine's per-parameter initialisation report is noise here
    MMLogger.get_instance('distill_balance', log_level='WARNING')
    measure_at = sorted({1, args.iters} | set(
        range(args.every, args.iters + 1, args.every)))
    with DefaultScope.overwrite_default_scope('mmpkkd'):
        rows, model, initial, batch = train_and_measure(
            cfg, args.iters, measure_at, args.seed)
        mid = mid_attribution(model, initial, batch) \
            if model.layer_pairs else {}
    print(format_table(rows))
    if mid:
        drop = mid['before'] - mid['after']
        print(f'\nL_mid / beta on the first batch: {mid["before"]:.4g} at '
              f'initialisation, {mid["after"]:.4g} after {args.iters} '
              'iterations.')
        print(f'  connectors alone (features as at initialisation): '
              f'{mid["connectors_only"]:.4g}')
        print(f'  features alone (connectors as at initialisation): '
              f'{mid["features_only"]:.4g}')
        if drop > 0:
            own = mid['before'] - mid['connectors_only']
            print(f'  the connectors by themselves close '
                  f'{100 * own / drop:.0f} % of the decrease')
    out = {'rows': rows, 'mid_attribution': mid}
    if args.json:
        with open(make_parent(args.json), 'w') as f:
            json.dump(out, f, indent=1)
    return out


def main(argv=None) -> Dict:
    """Run the tool; errors propagate (for use from Python)."""
    return report(parse_args(argv))


if __name__ == '__main__':
    run_tool(report, parse_args(), 'distill_balance.py')
