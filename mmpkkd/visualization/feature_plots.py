"""Histograms of the distilled features and weights of a PKKD pair.

* ``features_<layer>.png``, per distilled layer pair: the *raw* outputs of
  teacher and student on two x axes, one per network, with heights scaled
  to a peak of 1 so both shapes are visible; and the *kernel-mapped*
  features that ``L_mid`` compares, the student after the kernel alone as
  a dashed line.
* ``weights.png``: the pooled adder and conv weights, raw, then
  standardised on a log scale against unit-variance Gaussian and Laplace
  densities (AdderNet: adder weights tend to a Laplace, conv weights to a
  Gaussian).

The data come from :mod:`mmpkkd.visualization.features`.
"""
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

import numpy as np

from mmpkkd.apis import get_model, is_distiller_cfg
from mmpkkd.utils import read_config
from .features import (LayerFeatures, collect_features, collect_weights,
                       test_inputs)
from .figure import (STUDENT_COLOR, TEACHER_COLOR, FigureInfo, new_figure,
                     save_figure)


@dataclass
class FeatureFigures:
    """Everything :func:`visualize_features` wrote."""
    layers: Dict[str, FigureInfo] = field(default_factory=dict)
    weights: Optional[FigureInfo] = None


def _stats(x: np.ndarray) -> str:
    return f'mean {x.mean():.3g}, std {x.std():.3g}'


def _peak_hist(ax, values: np.ndarray, color: str, label: str,
               bins: int = 80) -> None:
    """Histogram with its highest bin scaled to 1, on its own x range."""
    counts, edges = np.histogram(values, bins=bins)
    ax.stairs(counts / max(counts.max(), 1), edges, fill=True, alpha=0.45,
              color=color, label=label)
    ax.tick_params(axis='x', colors=color)


def _two_scale_panel(ax, teacher: np.ndarray, student: np.ndarray,
                     t_label: str, s_label: str, title: str) -> None:
    """Teacher on the bottom x axis, student on a twin top x axis."""
    _peak_hist(ax, teacher, TEACHER_COLOR, t_label)
    ax.set_xlabel(f'{t_label} value', color=TEACHER_COLOR)
    ax.set_ylabel('count / peak count')
    top = ax.twiny()
    _peak_hist(top, student, STUDENT_COLOR, s_label)
    top.set_xlabel(f'{s_label} value', color=STUDENT_COLOR)
    handles = (ax.get_legend_handles_labels()[0] +
               top.get_legend_handles_labels()[0])
    ax.legend(handles, [
        f'{t_label} ({_stats(teacher)})', f'{s_label} ({_stats(student)})'
    ], loc='upper left', fontsize=7)
    ax.set_title(title, fontsize=9, pad=28)


def plot_layer_features(feat: LayerFeatures, path: str) -> FigureInfo:
    """Two panels for one layer pair: raw outputs, kernel-mapped features.

    Args:
        feat (LayerFeatures): From :func:`collect_features`.
        path (str): PNG file to write.

    Returns:
        FigureInfo: ``num_panels == 2``.
    """
    fig, (raw_ax, map_ax) = new_figure(1, 2)
    name = feat.student_name if feat.student_name == feat.teacher_name \
        else f'{feat.student_name} / {feat.teacher_name}'
    _two_scale_panel(raw_ax, feat.teacher_raw, feat.student_raw,
                     'teacher (CNN conv)', 'student (ANN adder)',
                     f'raw layer output: {name}')

    mapped = (feat.teacher_mapped, feat.student_mapped, feat.student_kernel)
    lo = min(float(v.min()) for v in mapped)
    hi = max(float(v.max()) for v in mapped)
    edges = np.linspace(lo, hi if hi > lo else lo + 1, 81)
    for values, color, label, style in (
        (feat.teacher_mapped, TEACHER_COLOR, 'teacher kernel (Gaussian)',
         'fill'),
        (feat.student_mapped, STUDENT_COLOR,
         'student kernel (Laplace) + connector', 'fill'),
        (feat.student_kernel, STUDENT_COLOR, 'student kernel only',
         'dashed'),
    ):
        density, _ = np.histogram(values, bins=edges, density=True)
        if style == 'fill':
            map_ax.stairs(density, edges, fill=True, alpha=0.45, color=color,
                          label=f'{label} ({_stats(values)})')
        else:
            map_ax.stairs(density, edges, color=color, linestyle='--',
                          label=f'{label} ({_stats(values)})')
    map_ax.set_yscale('log')
    map_ax.set_xlabel('mapped feature value (compared by L_mid)')
    map_ax.set_ylabel('density (log)')
    map_ax.legend(fontsize=7)
    map_ax.set_title(f'kernel-mapped: {name}', fontsize=9, pad=28)
    return save_figure(fig, path, panels=2)


def _excess_kurtosis(x: np.ndarray) -> float:
    z = (x - x.mean()) / max(float(x.std()), 1e-12)
    return float((z**4).mean() - 3.0)


def plot_weights(ann: np.ndarray, cnn: np.ndarray, path: str,
                 title: str = '') -> FigureInfo:
    """Two panels: raw weights (own x axes) and standardised weights.

    The standardised panel is on a log scale with the unit-variance
    Gaussian and Laplace densities; the legend gives the excess kurtosis
    (Gaussian 0, Laplace 3).

    Returns:
        FigureInfo: ``num_panels == 2``.
    """
    fig, (raw_ax, std_ax) = new_figure(1, 2)
    _two_scale_panel(raw_ax, cnn, ann, 'CNN conv weights',
                     'ANN adder weights', f'raw weights {title}'.strip())
    edges = np.linspace(-6, 6, 121)
    for values, color, label in ((cnn, TEACHER_COLOR, 'CNN conv'),
                                 (ann, STUDENT_COLOR, 'ANN adder')):
        z = (values - values.mean()) / max(float(values.std()), 1e-12)
        density, _ = np.histogram(z, bins=edges, density=True)
        std_ax.stairs(density, edges, fill=True, alpha=0.45, color=color,
                      label=f'{label} (excess kurtosis '
                      f'{_excess_kurtosis(values):.2f})')
    grid = np.linspace(-6, 6, 400)
    std_ax.plot(grid, np.exp(-grid**2 / 2) / np.sqrt(2 * np.pi), 'k-',
                lw=1, label='Gaussian (kurtosis 0)')
    b = 1 / np.sqrt(2)  # unit-variance Laplace
    std_ax.plot(grid, np.exp(-np.abs(grid) / b) / (2 * b), 'k--', lw=1,
                label='Laplace (kurtosis 3)')
    std_ax.set_yscale('log')
    std_ax.set_ylim(1e-4, 2)
    std_ax.set_xlabel('(w - mean) / std')
    std_ax.set_ylabel('density (log)')
    std_ax.legend(fontsize=7)
    std_ax.set_title('standardised weights', fontsize=9, pad=28)
    return save_figure(fig, path, panels=2)


def _file_name(s_name: str, t_name: str) -> str:
    name = s_name if s_name == t_name else f'{s_name}__{t_name}'
    return f'features_{name}.png'


def visualize_features(config: str,
                       checkpoint: Optional[str],
                       out_dir: str,
                       layers: Optional[Sequence[str]] = None,
                       num_images: int = 64,
                       weights: str = 'distilled',
                       cfg_options: Optional[dict] = None
                       ) -> FeatureFigures:
    """Write the feature histograms of each layer pair and the weights.

    Args:
        config (str): PKKD config.
        checkpoint (str, optional): Distiller checkpoint (None: the random
            initialisation).
        out_dir (str): Folder of the PNGs (``features_<layer>.png``,
            ``weights.png``).
        layers (Sequence[str], optional): Pairs to draw; default all.
        num_images (int): Test images fed to both networks.
        weights (str): ``'distilled'`` or ``'all'`` (see
            :func:`collect_weights`).
        cfg_options (dict, optional): Config overrides.

    Returns:
        FeatureFigures: Paths and panel counts, by student layer name.

    Example:
        >>> figs = visualize_features(
        ...     'configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py',
        ...     'epoch_15.pth', 'work_dirs/vis')
        >>> sorted(figs.layers)[0], figs.layers[
        ...     'backbone.layer1.2.conv2'].num_panels
        ('backbone.layer1.2.conv2', 2)
    """
    cfg = read_config(config, cfg_options)
    if not is_distiller_cfg(cfg.model):
        raise ValueError(
            f'{config} is not a distiller config (model has no teacher and '
            'student); pass a PKKD config such as '
            'configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py.')
    model = get_model(cfg, checkpoint)
    inputs = test_inputs(cfg, model, num_images)
    figures = FeatureFigures()
    for feat in collect_features(model, inputs, layers):
        path = osp.join(out_dir,
                        _file_name(feat.student_name, feat.teacher_name))
        figures.layers[feat.student_name] = plot_layer_features(feat, path)
    ann, cnn, names = collect_weights(model, weights)
    figures.weights = plot_weights(
        ann, cnn, osp.join(out_dir, 'weights.png'),
        title=f'({weights}: {len(names)} layers)')
    return figures
