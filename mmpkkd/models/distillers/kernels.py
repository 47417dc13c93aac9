"""Kernel feature maps that make adder and conv outputs comparable (PKKD).

Each kernel turns a captured layer (:class:`LayerRecord`: input ``x``,
module with weight ``f``, output ``y``) into a feature map of the output's
shape. For an output position with input patch ``x`` and filter ``f``:

* :class:`LaplaceKernel` (ANN side): ``exp(-||x - f||_1 / sigma)``. The
  adder output already is ``-||x - f||_1``, so this is ``exp(y / sigma)``.
* :class:`GaussianKernel` (CNN side): ``exp(-||x - f||_2^2 / (2 sigma^2))``
  with ``||x - f||^2 = ||x||^2 + ||f||^2 - 2 x.f``: the conv output gives
  ``x.f``, a conv of ``x^2`` with a ones kernel gives the patch energy
  ``||x||^2`` and the filter norm is ``||f||^2``; no unfolding.
  ``GaussianKernel(argument='conv_output')`` instead puts the conv output
  alone in the exponent, ``exp(x.f / (2 sigma^2))`` (the form one public
  transcription of the paper gives; the factor the full distance adds,
  ``exp(-(||x||^2 + ||f||^2) / (2 sigma^2))``, is then left out).
* :class:`IdentityKernel`: the raw output (the "no kernel" ablation).

``sigma='auto'`` picks the bandwidth per layer and batch (not learned, no
gradient) so that the mean exponent is -1: ``sigma = mean(||x - f||_1)``
for the Laplace kernel and ``2 sigma^2 = mean(||x - f||^2)`` for the
Gaussian one. Raw adder outputs are in the hundreds for a 3x3x64 patch, so
any fixed sigma must be tuned per layer; ``auto`` keeps the kernel values
in a useful range at every depth and over training. A float fixes sigma.
Adder L1 distances differ by orders of magnitude between layers, so in a
distiller config ``sigma`` may also be a list, one value per distilled layer
(see :func:`build_layer_kernels`); a kernel module itself maps one layer.
"""
from typing import List, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmpkkd.registry import MODELS
from .feature_capture import LayerRecord

Sigma = Union[str, float]
GAUSSIAN_ARGUMENTS = ('distance', 'conv_output')
#: largest exponent of ``GaussianKernel(argument='conv_output')``; exp(60)
#: is far from float32's overflow at exp(88.7)
MAX_EXPONENT = 60.0


def standardize_maps(maps: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Zero mean, unit variance per channel over batch and positions.

    Args:
        maps (Tensor): Kernel maps, ``(N, C, H, W)``.
        eps (float): Added to the variance.

    Returns:
        Tensor: ``(N, C, H, W)``, differentiable in ``maps``.

    Example:
        >>> out = standardize_maps(torch.rand(4, 3, 5, 5) * 7 + 2)
        >>> out.mean(dim=(0, 2, 3)).abs().max() < 1e-5
        tensor(True)
    """
    mean = maps.mean(dim=(0, 2, 3), keepdim=True)
    var = maps.var(dim=(0, 2, 3), keepdim=True, unbiased=False)
    return (maps - mean) / torch.sqrt(var + eps)


def _check_sigma(sigma: Sigma, kernel: str) -> Sigma:
    if sigma == 'auto':
        return sigma
    if isinstance(sigma, (list, tuple)):
        raise ValueError(
            f'{kernel} maps one layer and takes one sigma, got {sigma!r}. '
            'A list (one value per distilled layer) goes in the kernel '
            'config of PKKDDistiller (student_kernel / teacher_kernel).')
    if isinstance(sigma, (int, float)) and not isinstance(sigma, bool) \
            and sigma > 0:
        return float(sigma)
    raise ValueError(f"{kernel} sigma must be 'auto' or a positive number, "
                     f'got {sigma!r}.')


def build_layer_kernels(cfg: dict, layer_names: Sequence[str],
                        side: str) -> nn.ModuleList:
    """One kernel module per distilled layer, from one kernel config.

    ``cfg['sigma']`` may be ``'auto'``, a float (the same for every layer)
    or a list with one ``'auto'``/float per layer, in ``layer_names`` order.
    Configs without ``sigma`` (e.g. ``IdentityKernel``) are built as given.

    Args:
        cfg (dict): Kernel config, e.g. ``dict(type='LaplaceKernel',
            sigma=[100., 200., 400.])``.
        layer_names (Sequence[str]): The distilled layers of this side.
        side (str): ``'student_kernel'`` or ``'teacher_kernel'``, for errors.

    Returns:
        nn.ModuleList: ``len(layer_names)`` kernels.

    Example:
        >>> ks = build_layer_kernels(
        ...     dict(type='LaplaceKernel', sigma=[10., 'auto']),
        ...     ['backbone.layer1.2.conv2', 'backbone.layer2.2.conv2'],
        ...     'student_kernel')
        >>> [k.sigma for k in ks]
        [10.0, 'auto']
    """
    sigma = cfg.get('sigma', None)
    if isinstance(sigma, (list, tuple)):
        if len(sigma) != len(layer_names):
            raise ValueError(
                f'{side}.sigma has {len(sigma)} values but '
                f'{len(layer_names)} layers are distilled {list(layer_names)}'
                "; give one value per layer, or one 'auto'/float for all.")
        sigmas: List = list(sigma)
    else:
        sigmas = [sigma] * len(layer_names)
    kernels = nn.ModuleList()
    for value in sigmas:
        layer_cfg = dict(cfg)
        if 'sigma' in cfg:
            layer_cfg['sigma'] = value
        kernels.append(MODELS.build(layer_cfg))
    return kernels


def _conv_geometry(module: nn.Module, kernel: str) -> nn.Module:
    needed = ('weight', 'stride', 'padding', 'dilation', 'groups')
    if not all(hasattr(module, attr) for attr in needed):
        raise TypeError(
            f'{kernel} needs a conv-like layer (Conv2d or Adder2d) to read '
            f'its weight and geometry, got {type(module).__name__}. Distill '
            'a conv/adder layer or use kernel=dict(type="IdentityKernel").')
    return module


@MODELS.register_module()
class IdentityKernel(nn.Module):
    """No kernel: the layer's raw output (ablation).

    Example:
        >>> IdentityKernel()(record).shape == record.output.shape
        True
    """

    def forward(self, record: LayerRecord) -> torch.Tensor:
        return record.output.float()


@MODELS.register_module()
class LaplaceKernel(nn.Module):
    """Laplace kernel of an adder layer: ``exp(-||x - f||_1 / sigma)``.

    Args:
        sigma (str | float): ``'auto'`` (mean L1 distance of the batch) or
            a positive bandwidth. Defaults to ``'auto'``.

    Example:
        >>> k = LaplaceKernel()(record)  # record.output: (N, C, H, W) <= 0
        >>> bool(((k > 0) & (k <= 1)).all())
        True
    """

    def __init__(self, sigma: Sigma = 'auto'):
        super().__init__()
        self.sigma = _check_sigma(sigma, 'LaplaceKernel')

    def extra_repr(self) -> str:
        return f'sigma={self.sigma!r}'

    def forward(self, record: LayerRecord) -> torch.Tensor:
        module = _conv_geometry(record.module, 'LaplaceKernel')
        y = record.output.float()
        if getattr(module, 'bias', None) is not None:
            y = y - module.bias.float().view(1, -1, 1, 1)
        dist = (-y).clamp(min=0)  # ||x - f||_1
        sigma = self.sigma
        if sigma == 'auto':
            sigma = dist.detach().mean().clamp(min=1e-6)
        return torch.exp(-dist / sigma)


@MODELS.register_module()
class GaussianKernel(nn.Module):
    """Gaussian kernel of a conv layer, ``exp(-||x - f||^2 / (2 sigma^2))``.

    Computed from the conv output, the patch energy and the filter norm.

    Args:
        sigma (str | float): ``'auto'`` (``2 sigma^2`` = mean squared
            distance of the batch; with ``argument='conv_output'``, the
            mean ``|x.f|``) or a positive bandwidth.
        argument (str): ``'distance'`` (default): the exponent is the full
            squared distance. ``'conv_output'``: ``exp(x.f / (2 sigma^2))``,
            the conv output alone (exponent capped at 60).

    Example:
        >>> k = GaussianKernel(sigma=1.0)(record)  # conv record
        >>> k.shape == record.output.shape
        True
    """

    def __init__(self, sigma: Sigma = 'auto', argument: str = 'distance'):
        super().__init__()
        self.sigma = _check_sigma(sigma, 'GaussianKernel')
        if argument not in GAUSSIAN_ARGUMENTS:
            raise ValueError(f'GaussianKernel argument must be one of '
                             f'{GAUSSIAN_ARGUMENTS}, got {argument!r}.')
        self.argument = argument

    def extra_repr(self) -> str:
        return f'sigma={self.sigma!r}, argument={self.argument!r}'

    @staticmethod
    def conv_output(record: LayerRecord) -> torch.Tensor:
        """``x.f`` for every output position (the output less its bias)."""
        conv = _conv_geometry(record.module, 'GaussianKernel')
        y = record.output.float()
        if getattr(conv, 'bias', None) is not None:
            y = y - conv.bias.float().view(1, -1, 1, 1)
        return y

    @staticmethod
    def squared_distance(record: LayerRecord) -> torch.Tensor:
        """``||x_patch - f||^2`` for every output position, (N, C, H, W)."""
        conv = _conv_geometry(record.module, 'GaussianKernel')
        x = record.input.float()
        weight = conv.weight.float()
        y = GaussianKernel.conv_output(record)
        groups = conv.groups
        ones = x.new_ones(groups, x.shape[1] // groups, *weight.shape[2:])
        energy = F.conv2d(x * x, ones, None, conv.stride, conv.padding,
                          conv.dilation, groups)  # (N, groups, H, W)
        energy = energy.repeat_interleave(weight.shape[0] // groups, dim=1)
        filter_norm = weight.pow(2).sum(dim=(1, 2, 3)).view(1, -1, 1, 1)
        return (energy + filter_norm - 2 * y).clamp(min=0)

    def forward(self, record: LayerRecord) -> torch.Tensor:
        if self.argument == 'conv_output':
            y = self.conv_output(record)
            if self.sigma == 'auto':
                two_sigma2 = y.detach().abs().mean().clamp(min=1e-6)
            else:
                two_sigma2 = 2 * self.sigma**2
            return torch.exp((y / two_sigma2).clamp(max=MAX_EXPONENT))
        dist2 = self.squared_distance(record)
        if self.sigma == 'auto':
            two_sigma2 = dist2.detach().mean().clamp(min=1e-6)
        else:
            two_sigma2 = 2 * self.sigma**2
        return torch.exp(-dist2 / two_sigma2)
