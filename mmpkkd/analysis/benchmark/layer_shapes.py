"""Adder layer shapes benchmarked by ``tools/benchmarks/benchmark_*.py``.

Example:
    >>> shapes = resnet20_shapes(batch=64)
    >>> shapes[0].name, shapes[0].out_hw, shapes[0].macs
    ('r20.s1.3x3', (32, 32), 150994944)
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch


@dataclass
class LayerShape:
    """One adder layer: input ``(n, c, h, w)``, weight ``(cout, c, k, k)``.
    """
    name: str
    n: int
    c: int
    h: int
    w: int
    cout: int
    k: int
    stride: int
    padding: int

    @property
    def out_hw(self) -> Tuple[int, int]:
        ho = (self.h + 2 * self.padding - self.k) // self.stride + 1
        wo = (self.w + 2 * self.padding - self.k) // self.stride + 1
        return ho, wo

    @property
    def macs(self) -> int:
        ho, wo = self.out_hw
        return self.n * self.cout * self.c * self.k * self.k * ho * wo

    def random_inputs(self, device: str = 'cpu', seed: int = 0
                      ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Seeded float32 ``(x, w, grad_y)``; ``x`` and ``w`` require
        grad."""
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(self.n, self.c, self.h, self.w, generator=gen)
        w = torch.randn(self.cout, self.c, self.k, self.k, generator=gen)
        gy = torch.randn(self.n, self.cout, *self.out_hw, generator=gen)
        return (x.to(device).requires_grad_(),
                w.to(device).requires_grad_(), gy.to(device))


def resnet20_shapes(batch: int) -> List[LayerShape]:
    """Adder layers of the CIFAR ResNet-20 (32x32 input, widths 16/32/64,
    the 1x1 stride-2 shortcuts included)."""
    return [
        LayerShape('r20.s1.3x3', batch, 16, 32, 32, 16, 3, 1, 1),
        LayerShape('r20.s2.3x3.s2', batch, 16, 32, 32, 32, 3, 2, 1),
        LayerShape('r20.s2.3x3', batch, 32, 16, 16, 32, 3, 1, 1),
        LayerShape('r20.s2.down1x1', batch, 16, 32, 32, 32, 1, 2, 0),
        LayerShape('r20.s3.3x3.s2', batch, 32, 16, 16, 64, 3, 2, 1),
        LayerShape('r20.s3.3x3', batch, 64, 8, 8, 64, 3, 1, 1),
        LayerShape('r20.s3.down1x1', batch, 32, 16, 16, 64, 1, 2, 0),
    ]


def resnet50_shapes(batch: int) -> List[LayerShape]:
    """Representative ResNet-50 layers at ImageNet resolution (224)."""
    return [
        LayerShape('r50.l1.3x3', batch, 64, 56, 56, 64, 3, 1, 1),
        LayerShape('r50.l1.1x1.reduce', batch, 256, 56, 56, 64, 1, 1, 0),
        LayerShape('r50.l1.1x1.expand', batch, 64, 56, 56, 256, 1, 1, 0),
        LayerShape('r50.l2.3x3.s2', batch, 128, 56, 56, 128, 3, 2, 1),
        LayerShape('r50.l3.3x3', batch, 256, 14, 14, 256, 3, 1, 1),
        LayerShape('r50.l4.3x3', batch, 512, 7, 7, 512, 3, 1, 1),
        LayerShape('r50.l4.1x1.reduce', batch, 2048, 7, 7, 512, 1, 1, 0),
    ]


def select_shapes(which: str,
                  batch_resnet20: int,
                  batch_resnet50: int,
                  name_filter: Optional[Sequence[str]] = None
                  ) -> List[LayerShape]:
    """The shapes of ``'resnet20'``, ``'resnet50'`` or ``'all'``, keeping
    those whose name contains one of ``name_filter`` (all if None)."""
    if which not in ('resnet20', 'resnet50', 'all'):
        raise ValueError(f"which must be 'resnet20', 'resnet50' or 'all', "
                         f'got {which!r}.')
    shapes = []
    if which in ('resnet20', 'all'):
        shapes += resnet20_shapes(batch_resnet20)
    if which in ('resnet50', 'all'):
        shapes += resnet50_shapes(batch_resnet50)
    if name_filter:
        shapes = [s for s in shapes if any(p in s.name for p in name_filter)]
    return shapes


def check_layer_filter(which: str,
                       name_filter: Optional[Sequence[str]]) -> None:
    """Refuse a ``--layers`` filter that keeps none of ``which``'s shapes.

    Raises:
        UserError: No shape name contains a part of ``name_filter``; the
            message lists the names (exit status 2).

    Example:
        >>> check_layer_filter('resnet20', ['s1.3x3'])  # keeps one: fine
    """
    if select_shapes(which, 1, 1, name_filter):
        return
    from mmpkkd.utils import USAGE_EXIT, UserError
    names = ', '.join(s.name for s in select_shapes(which, 1, 1))
    raise UserError(f'--layers {" ".join(name_filter)} matches no layer of '
                    f'--shapes {which}; give parts of these names: {names}.',
                    USAGE_EXIT)
