"""Helpers of the command-line tools: configs and options, checkpoints,
work dirs and output paths, the runner, and readable errors."""
from .checkpoint import (checkpoint_state_dict, load_strictly,
                         read_checkpoint)
from .cli import close_distributed, load_config, merge_common_args
from .config import check_cfg_options, closest_key, read_config
from .errors import (INPUT_EXIT, USAGE_EXIT, UserError, debug_requested,
                     report_errors)
from .paths import check_output_path, make_parent, same_file
from .runner import KnownNoiseFilter, adapt_log_interval, build_runner
from .work_dir import checkpoint_files, latest_checkpoint, plan_run

__all__ = [
    'checkpoint_state_dict', 'load_strictly', 'read_checkpoint', 'close_distributed',
    'load_config', 'merge_common_args', 'check_cfg_options', 'closest_key',
    'read_config', 'INPUT_EXIT', 'USAGE_EXIT', 'UserError',
    'debug_requested', 'report_errors', 'check_output_path', 'make_parent',
    'same_file', 'KnownNoiseFilter', 'adapt_log_interval', 'build_runner',
    'checkpoint_files', 'latest_checkpoint', 'plan_run'
]
