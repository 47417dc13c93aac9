"""mmpkkd: adder neural networks and PKKD distillation on OpenMMLab.

Importing the package registers every module (ops, layers, backbones,
heads, distillers, losses, data sets, metrics) and installs the safe
checkpoint loader, so configs with ``default_scope = 'mmpkkd'`` need no
``custom_imports``.
"""
import warnings

# mmcv-lite (our mmcv) has no compiled ops; mmcv warns about one it cannot
# import whenever mmpretrain loads its transformer bricks. Nothing here
# uses it.
warnings.filterwarnings(
    'ignore', message='Fail to import ``MultiScaleDeformableAttention``')

from . import datasets, engine, evaluation, models, ops  # noqa: E402,F401
from .version import __version__  # noqa: E402

__all__ = ['__version__']
