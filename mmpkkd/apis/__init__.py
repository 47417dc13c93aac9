"""Get a model from a config and a checkpoint, and call it on tensors."""
from .model import get_model, get_model_cfg, is_distiller_cfg
from .tensor_mode import TensorModeWrapper

__all__ = [
    'get_model', 'get_model_cfg', 'is_distiller_cfg', 'TensorModeWrapper'
]
