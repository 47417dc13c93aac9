"""The runtime of the command-line tools (``tools/train.py``,
``tools/test.py``, the sweeps): reading a tool's config with its common
options, CPU process groups, the work-dir policy and the quiet runner.

It sits above every other layer of mmpkkd and nothing in mmpkkd imports
it: the library builds models, data and hooks; this package runs them the
way the tools do.
"""
from .launch import close_distributed, load_config, merge_common_args
from .runner import KnownNoiseFilter, adapt_log_interval, build_runner
from .work_dir import (LAST_CHECKPOINT, checkpoint_files, latest_checkpoint,
                       plan_run)

__all__ = [
    'close_distributed', 'load_config', 'merge_common_args',
    'KnownNoiseFilter', 'adapt_log_interval', 'build_runner',
    'LAST_CHECKPOINT', 'checkpoint_files', 'latest_checkpoint', 'plan_run'
]
