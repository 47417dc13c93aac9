"""Collect the distilled features and the weights of a PKKD pair.

For each distilled layer pair of a :class:`PKKDDistiller` the CNN teacher
and the ANN student are run on the same test images and their layer
outputs are captured with the distiller's own :class:`FeatureCapture`:

* *raw*: the conv output (teacher) and the adder output (student, always
  <= 0, of a much larger magnitude);
* *mapped*: what ``L_mid`` compares, from :meth:`PKKDDistiller.
  mapped_features`: the teacher after its (Gaussian) kernel, the student
  after its (Laplace) kernel and connector, and the student after the
  kernel alone.

The weights are the adder weights of the student and the conv weights of
the teacher, over the distilled layers or all adder layers. The figures are
drawn by :mod:`mmpkkd.visualization.feature_plots`.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope

from mmpkkd.models.layers import Adder2d
from mmpkkd.registry import DATASETS


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
