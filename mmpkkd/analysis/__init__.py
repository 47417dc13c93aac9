"""Operation and energy counts of adder and convolutional networks.

:func:`count_ops` traces one image through a network and counts its
multiplications, additions and sign operations per layer (see
:data:`CONVENTION`); :func:`energy_pj` prices them with :data:`ENERGY_PJ`;
:func:`format_markdown` puts the reports of several networks side by side;
:func:`networks_to_compare` gives the CNN and ANN of a config.

Benchmark helpers (timing, memory, environment, layer shapes, training
throughput) are in :mod:`mmpkkd.analysis.benchmark`; figures in
:mod:`mmpkkd.visualization`.
"""
from .networks import (NamedModel, cnn_twin_cfg, default_input_shape,
                       is_adder_net, networks_to_compare)
from .ops_counter import (CONVENTION, ENERGY_PJ, LayerOps, OpsReport,
                          count_ops, energy_pj)
from .ops_report import format_markdown

__all__ = [
    'CONVENTION', 'ENERGY_PJ', 'LayerOps', 'OpsReport', 'count_ops',
    'energy_pj', 'format_markdown', 'NamedModel', 'networks_to_compare',
    'cnn_twin_cfg', 'default_input_shape', 'is_adder_net'
]
