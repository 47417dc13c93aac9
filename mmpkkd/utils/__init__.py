"""The bottom layer of mmpkkd: configs and their options, output paths,
errors that say what to change (with their exit codes), and the tools'
``--debug`` / :func:`run_tool` ending.

It imports nothing of mmpkkd but :mod:`mmpkkd.registry`, so every other
package may use it. The tools' runtime (runner, process groups, work-dir
policy) is :mod:`mmpkkd.runtime`."""
from .cli import DEBUG_HELP, add_debug_arg, run_tool
from .config import check_cfg_options, closest_key, read_config
from .errors import (INPUT_EXIT, USAGE_EXIT, UserError, debug_requested,
                     report_errors)
from .paths import check_output_path, make_parent, same_file

__all__ = [
    'DEBUG_HELP', 'add_debug_arg', 'run_tool', 'check_cfg_options',
    'closest_key', 'read_config', 'INPUT_EXIT', 'USAGE_EXIT', 'UserError',
    'debug_requested', 'report_errors', 'check_output_path', 'make_parent',
    'same_file'
]
