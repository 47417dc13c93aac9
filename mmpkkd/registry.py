"""Registries of mmpkkd, children of mmpretrain's.

Configs set ``default_scope = 'mmpkkd'``. A ``type`` is then looked up here
first and, when it is not an mmpkkd module, in mmpretrain's registries and
then MMEngine's root registries, so ``ResNet``, ``CrossEntropyLoss``,
``SGD``, ``CosineAnnealingLR`` or ``Accuracy`` need no prefix and no
``custom_imports``. The ``locations`` make the registry import the package
that registers its modules the first time it is used.
"""
from mmengine.registry import Registry
from mmpretrain import registry as mmpretrain_registry
from mmpretrain.utils import register_all_modules

# A registry imports only its own ``locations``; the parents' modules must be
# registered up front for lookups that fall through to mmpretrain.
register_all_modules(init_default_scope=False)

__all__ = [
    'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'LOG_PROCESSORS',
    'OPTIMIZERS', 'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS',
    'PARAM_SCHEDULERS', 'DATASETS', 'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS',
    'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS', 'BATCH_AUGMENTS', 'TASK_UTILS',
    'METRICS', 'EVALUATORS', 'VISUALIZERS', 'VISBACKENDS'
]


def _child(name: str, parent: Registry, location: str = None) -> Registry:
    return Registry(
        name, parent=parent, locations=[location] if location else [])


_ENGINE = 'mmpkkd.engine'
_DATA = 'mmpkkd.datasets'
_MODELS = 'mmpkkd.models'
_EVAL = 'mmpkkd.evaluation'
_mp = mmpretrain_registry

RUNNERS = _child('runner', _mp.RUNNERS, _ENGINE)
RUNNER_CONSTRUCTORS = _child('runner constructor', _mp.RUNNER_CONSTRUCTORS,
                             _ENGINE)
LOOPS = _child('loop', _mp.LOOPS, _ENGINE)
HOOKS = _child('hook', _mp.HOOKS, _ENGINE)
LOG_PROCESSORS = _child('log processor', _mp.LOG_PROCESSORS, _ENGINE)
OPTIMIZERS = _child('optimizer', _mp.OPTIMIZERS, _ENGINE)
OPTIM_WRAPPERS = _child('optim wrapper', _mp.OPTIM_WRAPPERS, _ENGINE)
OPTIM_WRAPPER_CONSTRUCTORS = _child('optimizer wrapper constructor',
                                    _mp.OPTIM_WRAPPER_CONSTRUCTORS, _ENGINE)
PARAM_SCHEDULERS = _child('parameter scheduler', _mp.PARAM_SCHEDULERS,
                          _ENGINE)
DATASETS = _child('dataset', _mp.DATASETS, _DATA)
DATA_SAMPLERS = _child('data sampler', _mp.DATA_SAMPLERS, _DATA)
TRANSFORMS = _child('transform', _mp.TRANSFORMS, _DATA)
MODELS = _child('model', _mp.MODELS, _MODELS)
MODEL_WRAPPERS = _child('model_wrapper', _mp.MODEL_WRAPPERS, _MODELS)
WEIGHT_INITIALIZERS = _child('weight initializer', _mp.WEIGHT_INITIALIZERS,
                             _MODELS)
BATCH_AUGMENTS = _child('batch augment', _mp.BATCH_AUGMENTS, _MODELS)
TASK_UTILS = _child('task util', _mp.TASK_UTILS, _MODELS)
METRICS = _child('metric', _mp.METRICS, _EVAL)
EVALUATORS = _child('evaluator', _mp.EVALUATORS, _EVAL)
VISUALIZERS = _child('visualizer', _mp.VISUALIZERS)
VISBACKENDS = _child('vis_backend', _mp.VISBACKENDS)
