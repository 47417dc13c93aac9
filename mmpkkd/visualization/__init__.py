"""Figures of trainings and PKKD pairs, drawn on matplotlib figure objects
(pyplot and its global backend are left alone):

* training curves (validation metrics and loss terms) from MMEngine's
  ``scalars.json`` logs: :func:`load_curves`, :func:`plot_curves`;
* histograms of the distilled features and weights of a PKKD pair:
  :func:`visualize_features` (data from :func:`collect_features` and
  :func:`collect_weights`).

matplotlib is imported only when a figure is drawn.
"""
from .curves import Curves, load_curves, plot_curves, read_scalars
from .feature_plots import (FeatureFigures, plot_layer_features,
                            plot_weights, visualize_features)
from .features import (LayerFeatures, collect_features, collect_weights,
                       select_pairs, test_inputs)
from .figure import FigureInfo, new_figure, save_figure

__all__ = [
    'Curves', 'load_curves', 'plot_curves', 'read_scalars', 'FeatureFigures',
    'plot_layer_features', 'plot_weights', 'visualize_features',
    'LayerFeatures', 'collect_features', 'collect_weights', 'select_pairs',
    'test_inputs', 'FigureInfo', 'new_figure', 'save_figure'
]
