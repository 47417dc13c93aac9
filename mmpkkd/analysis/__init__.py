"""Analysis helpers behind ``tools/analysis``: operation/energy counts,
feature and weight histograms of a PKKD pair, training curves, whole-network
training throughput; the benchmarks' layer shapes and timing helpers are
:mod:`.layer_shapes` and :mod:`.timing`.

Plotting functions import matplotlib (Agg backend) only when called.
"""
from .builders import (NamedModel, build_model, cnn_twin_cfg,
                       default_input_shape, is_adder_net,
                       networks_to_compare, read_config)
from .curves import Curves, load_curves, plot_curves, read_scalars
from .feature_plots import (FeatureFigures, plot_layer_features,
                            plot_weights, visualize_features)
from .features import (LayerFeatures, collect_features, collect_weights,
                       load_distiller)
from .ops_counter import (CONVENTION, ENERGY_PJ, LayerOps, OpsReport,
                          count_ops, energy_pj)
from .ops_report import format_markdown
from .plotting import FigureInfo, pyplot, save_figure
from .throughput import DEFAULT_NETWORKS, make_train_step, measure_throughput

__all__ = [
    'CONVENTION', 'Curves', 'DEFAULT_NETWORKS', 'ENERGY_PJ',
    'FeatureFigures', 'FigureInfo', 'LayerFeatures', 'LayerOps',
    'NamedModel', 'OpsReport', 'build_model', 'cnn_twin_cfg',
    'collect_features',
    'collect_weights', 'count_ops', 'default_input_shape', 'energy_pj',
    'format_markdown', 'is_adder_net', 'load_curves', 'load_distiller',
    'make_train_step', 'measure_throughput', 'networks_to_compare',
    'plot_curves', 'plot_layer_features', 'plot_weights', 'pyplot',
    'read_config', 'read_scalars', 'save_figure', 'visualize_features'
]
