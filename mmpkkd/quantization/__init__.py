"""Int8 inference of adder networks on the CPU (see docs/user_guides/int8.md)."""
from .budget import AllocationBudget, AllocationError
from .calibration import DEFAULT_CLIP_LEVELS, choose_clip, collect_stats
from .int8_adder import Grid, Int8Adder2d, fold_batchnorm, shared_grid
from .model_cfg import Int8FileError, cfg_differences, check_model_cfg
from .quantize import (classifier_of, int8_layers, quantize_int8,
                       to_int8_structure)
from .serialization import (Int8FormatWarning, check_int8_dict,
                            check_matches_config, is_int8_dict,
                            is_safetensors_file, load_int8, read_int8,
                            resave_int8, save_int8)

__all__ = [
    'quantize_int8', 'Int8Adder2d', 'Grid', 'shared_grid', 'fold_batchnorm',
    'collect_stats', 'choose_clip', 'DEFAULT_CLIP_LEVELS', 'classifier_of',
    'int8_layers', 'to_int8_structure', 'save_int8', 'load_int8',
    'read_int8', 'is_int8_dict', 'AllocationBudget', 'AllocationError',
    'Int8FileError', 'cfg_differences', 'check_model_cfg',
    'check_matches_config', 'check_int8_dict', 'is_safetensors_file',
    'resave_int8', 'Int8FormatWarning'
]
