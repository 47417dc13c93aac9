"""Sweeps: a config trained over settings of ``--cfg-options`` and seeds,
one ``tools/train.py`` run per setting and seed, tabulated per setting.

One job per module:

* :mod:`~mmpkkd.experiments.spec`: the spec language (factors varied one at
  a time or in a grid, explicit settings, common options, seeds) and
  :class:`Setting`;
* :mod:`~mmpkkd.experiments.plan`: the settings checked against the config
  and one :class:`Run` per setting and seed;
* :mod:`~mmpkkd.experiments.records`: each run's record in its work dir and
  how an unfinished run continues;
* :mod:`~mmpkkd.experiments.results`: a run's result from its
  ``scalars.json`` logs, and the summary row of each setting;
* :mod:`~mmpkkd.experiments.stats`: mean and sample std, the paired
  difference with its Student-t interval;
* :mod:`~mmpkkd.experiments.tables`: ``results.csv``, ``results.md`` and
  ``runs.csv``;
* :mod:`~mmpkkd.experiments.compare`: the paired comparison of sweeps;
* :mod:`~mmpkkd.experiments.supervisor`: the training processes;
* :mod:`~mmpkkd.experiments.sweep`: one sitting of a sweep, all of the
  above in order.

The command-line tools are ``tools/analysis_tools/sweep.py`` and
``tools/analysis_tools/compare_sweeps.py``.

Example:
    >>> spec = read_spec('configs/sweeps/pkkd_digits_oat.yaml')
    >>> settings, runs, unit = plan_runs(
    ...     'configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py', spec,
    ...     'work_dirs/sweeps/pkkd_digits')
    >>> len(settings), len(runs), unit  # 8 settings x 3 seeds
    (8, 24, 'epoch')
"""
from .compare import paired_by_seed, report
from .plan import Run, config_hash, final_step, plan_runs
from .records import (LOG_FILE, RUN_FILE, check_record, checkpoint_step,
                      new_record, read_record, resume_args, write_json)
from .results import final_metrics, summarize, val_scalars
from .spec import (DEFAULT_METRIC, DEFAULT_NAME, SEED_KEY, SPEC_KEYS,
                   Setting, expand_settings, format_options, format_value,
                   parse_setting, read_spec)
from .stats import PairedDifference, mean_std, paired_difference
from .supervisor import train_runs
from .sweep import run_sweep
from .tables import read_finished_runs, write_tables

__all__ = [
    'paired_by_seed', 'report', 'Run', 'config_hash', 'final_step',
    'plan_runs', 'LOG_FILE', 'RUN_FILE', 'check_record', 'checkpoint_step',
    'new_record', 'read_record', 'resume_args', 'write_json',
    'final_metrics', 'summarize', 'val_scalars', 'DEFAULT_METRIC',
    'DEFAULT_NAME', 'SEED_KEY', 'SPEC_KEYS', 'Setting', 'expand_settings',
    'format_options', 'format_value', 'parse_setting', 'read_spec',
    'PairedDifference', 'mean_std', 'paired_difference', 'train_runs',
    'run_sweep', 'read_finished_runs', 'write_tables'
]
