"""Histograms of the distilled features and weights of a PKKD pair.

For each distilled layer pair of a :class:`PKKDDistiller` the CNN teacher
and the ANN student are run on the same test images and their layer
outputs are captured with the distiller's own :class:`FeatureCapture`:

* *raw*: the conv output (teacher) and the adder output (student, always
  <= 0, of a much larger magnitude); drawn on two x axes, one per network,
  with heights scaled to a peak of 1 so both shapes are visible;
* *mapped*: what ``L_mid`` compares, from :meth:`PKKDDistiller.
  mapped_features`: the teacher after its (Gaussian) kernel, the student
  after its (Laplace) kernel and connector; the student after the kernel
  alone is drawn as a dashed line.

The weight figure pools the adder weights of the student and the conv
weights of the teacher over the distilled layers (or all adder layers and
their teacher counterparts): raw, then standardised on a log scale against
unit-variance Gaussian and Laplace densities (AdderNet: adder weights tend
to a Laplace, conv weights to a Gaussian).
"""
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint

from mmpkkd.models.layers import Adder2d
from mmpkkd.registry import DATASETS
from .builders import build_model, is_distiller_cfg, load_config

TEACHER_COLOR, STUDENT_COLOR = 'tab:blue', 'tab:orange'


@dataclass
class LayerFeatures:
    """Flattened features of one distilled layer pair (numpy, float32)."""
    student_name: str
    teacher_name: str
    teacher_raw: np.ndarray
    student_raw: np.ndarray
    teacher_mapped: np.ndarray  # after the teacher kernel (and connector)
    student_kernel: np.ndarray  # after the student kernel only
    student_mapped: np.ndarray  # after the student kernel and connector


@dataclass
class FigureInfo:
    """A written figure: its path and panel (subplot) count.

    Twin x axes drawn inside a panel are not panels: ``num_panels`` counts
    the subplots, ``num_axes`` every matplotlib ``Axes``.
    """
    path: str
    num_panels: int
    num_axes: int


@dataclass
class FeatureFigures:
    """Everything :func:`visualize_features` wrote."""
    layers: Dict[str, FigureInfo] = field(default_factory=dict)
    weights: Optional[FigureInfo] = None


def load_distiller(config: str, checkpoint: Optional[str],
                   cfg_options: Optional[dict] = None
                   ) -> Tuple[Config, nn.Module]:
    """Build the PKKD distiller of ``config`` and load ``checkpoint``."""
    cfg = load_config(config, cfg_options)
    if not is_distiller_cfg(cfg.model):
        raise ValueError(
            f'{config} is not a distiller config (model has no teacher and '
            'student); pass a PKKD config such as '
            'configs/pkkd/resnet20_digits.py.')
    model = build_model(cfg.model)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    return cfg, model.eval()


def test_inputs(cfg: Config, model: nn.Module,
                num_images: int = 64) -> torch.Tensor:
    """The first ``num_images`` images of the config's test set, batched
    and normalised by the model's data preprocessor: ``(N, C, H, W)``."""
    if num_images < 1:
        raise ValueError(f'num_images must be >= 1, got {num_images}.')
    with DefaultScope.overwrite_default_scope('mmpkkd'):
        dataset = DATASETS.build(cfg.test_dataloader.dataset)
    count = min(num_images, len(dataset))
    data = pseudo_collate([dataset[i] for i in range(count)])
    return model.data_preprocessor(data, False)['inputs']


def select_pairs(layer_pairs: Sequence[Tuple[str, str]],
                 layers: Optional[Sequence[str]] = None
                 ) -> List[Tuple[str, str]]:
    """Pairs named by ``layers`` (student or teacher name, or a dotted
    suffix such as ``layer1.2.conv2``); all pairs when ``layers`` is None.
    """
    if not layers:
        return list(layer_pairs)

    def matches(query: str, name: str) -> bool:
        return name == query or name.endswith('.' + query)

    chosen = []
    for query in layers:
        hits = [p for p in layer_pairs
                if matches(query, p[0]) or matches(query, p[1])]
        if not hits:
            raise ValueError(
                f'{query!r} is not a distilled layer; choose from '
                f'{[s for s, _ in layer_pairs]} (student) or '
                f'{[t for _, t in layer_pairs]} (teacher).')
        chosen += [p for p in hits if p not in chosen]
    return chosen


def _flat(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().flatten().cpu().numpy()


@torch.no_grad()
def collect_features(model: nn.Module, inputs: torch.Tensor,
                     layers: Optional[Sequence[str]] = None
                     ) -> List[LayerFeatures]:
    """Raw and kernel-mapped features of the distilled layers.

    Args:
        model (PKKDDistiller): The distiller (eval mode).
        inputs (torch.Tensor): Normalised images, ``(N, C, H, W)``.
        layers (Sequence[str], optional): Pairs to keep (see
            :func:`select_pairs`); default all ``model.layer_pairs``.

    Returns:
        list[LayerFeatures]: One per chosen pair, in ``layer_pairs`` order.

    Example:
        >>> feats = collect_features(model, inputs)  # inputs (64, 3, 32, 32)
        >>> feats[0].student_raw.shape  # 64 * 16 * 32 * 32 values
        (1048576,)
    """
    if not model.layer_pairs:
        raise ValueError('The distiller has no distilled layers '
                         '(distill_layers=[]); nothing to visualise.')
    chosen = select_pairs(model.layer_pairs, layers)
    with model.teacher_capture.recording() as t_records:
        model.teacher(inputs, mode='tensor')
    with model.student_capture.recording() as s_records:
        model.student(inputs, mode='tensor')
    s_mapped, t_mapped = model.mapped_features(s_records, t_records)
    features = []
    for i, (s_name, t_name) in enumerate(model.layer_pairs):
        if (s_name, t_name) not in chosen:
            continue
        features.append(
            LayerFeatures(
                student_name=s_name,
                teacher_name=t_name,
                teacher_raw=_flat(t_records[t_name].output),
                student_raw=_flat(s_records[s_name].output),
                teacher_mapped=_flat(t_mapped[i]),
                student_kernel=_flat(
                    model.student_kernels[i](s_records[s_name])),
                student_mapped=_flat(s_mapped[i])))
    return features


# -------------------------------------------------------------- plotting
def _pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


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


def _finish(fig, path: str, panels: int) -> FigureInfo:
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    info = FigureInfo(path=path, num_panels=panels, num_axes=len(fig.axes))
    _pyplot().close(fig)
    return info


def plot_layer_features(feat: LayerFeatures, path: str) -> FigureInfo:
    """Two panels for one layer pair: raw outputs, kernel-mapped features.

    Args:
        feat (LayerFeatures): From :func:`collect_features`.
        path (str): PNG file to write.

    Returns:
        FigureInfo: ``num_panels == 2``.
    """
    plt = _pyplot()
    fig, (raw_ax, map_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
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
    return _finish(fig, path, panels=2)


def collect_weights(model: nn.Module, scope: str = 'distilled'
                    ) -> Tuple[np.ndarray, np.ndarray, List[str]]:
    """Adder weights of the student and conv weights of the teacher.

    Args:
        model (PKKDDistiller): The distiller.
        scope (str): ``'distilled'``: the distilled layer pairs;
            ``'all'``: every adder layer of the student and the teacher's
            layer of the same name (the stem and head, multiplicative in
            both, are left out).

    Returns:
        tuple: ``(ann_weights, cnn_weights, student_layer_names)``, the
        weights flattened and pooled.
    """
    s_modules = dict(model.student.named_modules())
    t_modules = dict(model.teacher.named_modules())
    if scope == 'distilled':
        pairs = list(model.layer_pairs)
    elif scope == 'all':
        pairs = [(n, n) for n, m in s_modules.items()
                 if isinstance(m, Adder2d) and n in t_modules]
    else:
        raise ValueError(f"scope must be 'distilled' or 'all', got "
                         f'{scope!r}.')
    pairs = [(s, t) for s, t in pairs
             if isinstance(s_modules[s], Adder2d)
             and isinstance(t_modules[t], nn.Conv2d)
             and not isinstance(t_modules[t], Adder2d)]
    if not pairs:
        raise ValueError(
            f'No (adder, conv) layer pairs in scope {scope!r}; use '
            "--weights all, or distil adder layers of the student.")
    ann = np.concatenate([_flat(s_modules[s].weight) for s, _ in pairs])
    cnn = np.concatenate([_flat(t_modules[t].weight) for _, t in pairs])
    return ann, cnn, [s for s, _ in pairs]


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
    plt = _pyplot()
    fig, (raw_ax, std_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
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
    return _finish(fig, path, panels=2)


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
        >>> figs = visualize_features('configs/pkkd/resnet20_digits.py',
        ...                           'epoch_15.pth', 'work_dirs/vis')
        >>> sorted(figs.layers)[0], figs.layers[
        ...     'backbone.layer1.2.conv2'].num_panels
        ('backbone.layer1.2.conv2', 2)
    """
    cfg, model = load_distiller(config, checkpoint, cfg_options)
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
