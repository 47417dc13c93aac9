"""Analysis helpers behind ``tools/analysis``: operation/energy counts,
feature and weight histograms of a PKKD pair, training curves, whole-network
training throughput.

Plotting functions import matplotlib (Agg backend) only when called.
"""
from .builders import (NamedModel, build_model, default_input_shape,
                       is_adder_net, load_config, networks_to_compare,
                       twin_config_path)
from .curves import Curves, load_curves, plot_curves
from .features import (FeatureFigures, FigureInfo, collect_features,
                       collect_weights, visualize_features)
from .throughput import (DEFAULT_NETWORKS, make_train_step,
                         measure_throughput)
from .ops_counter import (CONVENTION, ENERGY_PJ, LayerOps, OpsReport,
                          count_ops, energy_pj, format_markdown)

__all__ = [
    'CONVENTION', 'DEFAULT_NETWORKS', 'ENERGY_PJ', 'Curves', 'FeatureFigures', 'FigureInfo',
    'LayerOps', 'NamedModel', 'OpsReport', 'build_model', 'collect_features',
    'collect_weights', 'count_ops', 'default_input_shape', 'energy_pj',
    'format_markdown', 'is_adder_net', 'load_config', 'load_curves', 'make_train_step', 'measure_throughput',
    'networks_to_compare', 'plot_curves', 'twin_config_path',
    'visualize_features'
]
