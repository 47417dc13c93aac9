"""Train a config over settings of ``--cfg-options`` and seeds; tabulate the
validation accuracy per setting (mean, std, n).

Each run is a plain ``tools/train.py`` process with its own work dir,
``OUT/<setting>/seed_<seed>``. The sweep can be stopped at any time (Ctrl-C,
``kill``, a reboot) and started again with the same command: finished runs
are read, not redone; a run that was interrupted resumes from its last
checkpoint (``tools/train.py --resume``); a run that failed is tried again.
After every run ``OUT/results.csv`` and ``OUT/results.md`` (one row per
setting) and ``OUT/runs.csv`` (one row per run) are rewritten.

The settings come from a spec file (YAML or JSON) and/or the command line:

* ``one_at_a_time`` / ``--one-at-a-time KEY=V1,V2``: the config's own
  values (the ``default`` row) and, for each factor, each value with all
  other factors at the default. A value equal to the config's is the
  default row, not a second run of it.
* ``grid`` / ``--grid KEY=V1,V2``: every combination of the factors.
* ``settings`` / ``--setting KEY=V [KEY=V ...]``: explicit settings.
* ``options`` / ``--options KEY=V ...``: applied to every run (a proxy
  budget, the validation split).
* ``seeds`` / ``--seeds``: each setting is trained once per seed
  (``randomness.seed``).

A factor's value may also be a mapping of several keys set together (and
an optional ``name``), e.g. both kernels' ``sigma``. Spec example (YAML)::

    seeds: [0, 1, 2]
    options:                      # the proxy budget, for every run
      train_dataloader.dataset.dataset.indices: 10000
      train_cfg.max_epochs: 5
      param_scheduler.T_max: 5
    one_at_a_time:
      model.teacher.head.type: [LinearClsHead, BNLinearClsHead]
      model.loss_blend.alpha: [0.1, 0.5, 1]
      sigma:
        - {model.student_kernel.sigma: auto, model.teacher_kernel.sigma: auto}
        - {name: sigma=fixed, model.student_kernel.sigma: 50.0,
           model.teacher_kernel.sigma: 5.0}
    settings:
      - {model.loss_blend.alpha: 0.5, model.loss_mid.loss_weight: 1}

Runs go one at a time (seed by seed: every setting's first seed before any
second seed); ``--jobs N`` runs N at once and ``--threads T`` sets
``OMP_NUM_THREADS`` (and ``MKL_NUM_THREADS``) of every run. Each run's
wall-clock time is in the tables; each sitting's total time in
``OUT/sessions.jsonl``.

Example:
    python tools/analysis/sweep.py \\
        configs/pkkd/pkkd_resnet20_1xb128-15e_fashionmnist.py \\
        --spec configs/sweeps/pkkd_fashionmnist_oat.yaml \\
        --out-dir work_dirs/sweeps/pkkd_fm --threads 2
    # the same command again after an interruption continues the sweep
    python tools/analysis/sweep.py \\
        configs/cnn/cnn_resnet20_1xb64-15e_digits.py \\
        --one-at-a-time optim_wrapper.optimizer.lr=0.05,0.2 --seeds 0 1 2 \\
        --out-dir work_dirs/sweeps/cnn_lr --dry-run
"""
import argparse
import csv
import datetime
import hashlib
import itertools
import json
import os
import os.path as osp
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mmengine.config import DictAction  # light: no torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN_TOOL = osp.join(REPO, 'tools', 'train.py')
#: The file in each run's work dir that records the run for the sweep.
RUN_FILE = 'sweep_run.json'
#: The training output of each run (all attempts, appended).
LOG_FILE = 'sweep_train.log'
SEED_KEY = 'randomness.seed'
SPEC_KEYS = ('seeds', 'options', 'one_at_a_time', 'grid', 'settings',
             'metric')
DEFAULT_NAME = 'default'
#: How often a running run's elapsed time is saved (seconds).
HEARTBEAT_S = 30.0
_MISSING = object()


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train a config over settings of --cfg-options and '
        'seeds, one tools/train.py run per setting and seed, and write a '
        'table of the validation accuracy per setting. Run the same command '
        'again to continue an interrupted sweep.',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Values: KEY=V1,V2 lists the values of one factor; a value '
        'that is itself a list goes in a spec file.')
    parser.add_argument('config', help='training config')
    parser.add_argument(
        '--out-dir',
        help='folder of the sweep: one work dir per run, the tables '
        '(default: work_dirs/sweeps/<config name>)')
    parser.add_argument('--spec', help='YAML or JSON file with seeds, '
                        'options, one_at_a_time, grid and settings')
    parser.add_argument(
        '--one-at-a-time', nargs='+', action=DictAction, default={},
        metavar='KEY=V1,V2',
        help='factors varied one at a time around the config\'s values')
    parser.add_argument(
        '--grid', nargs='+', action=DictAction, default={},
        metavar='KEY=V1,V2', help='factors varied in every combination')
    parser.add_argument(
        '--setting', nargs='+', action='append', default=[],
        metavar='KEY=V', help='one explicit setting (repeat the option for '
        'more)')
    parser.add_argument(
        '--options', nargs='+', action=DictAction, default={},
        metavar='KEY=V', help='--cfg-options of every run (e.g. a proxy '
        'budget); override the spec\'s')
    parser.add_argument('--seeds', nargs='+', type=int,
                        help='seeds of every setting (default: the spec\'s, '
                        'else 0)')
    parser.add_argument(
        '--metric', help='validation metric to tabulate (default: '
        'accuracy/top1; a PKKD teacher\'s is teacher/<metric>)')
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs trained at the same time (default: 1)')
    parser.add_argument(
        '--threads', type=int,
        help='OMP_NUM_THREADS and MKL_NUM_THREADS of every run (default: '
        'inherited)')
    parser.add_argument(
        '--max-runs', type=int,
        help='start at most this many runs in this sitting, then stop')
    parser.add_argument(
        '--dry-run', action='store_true',
        help='list the runs and their state and write the tables from the '
        'finished runs; train nothing')
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of an error')
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error('--jobs must be at least 1')
    if args.threads is not None and args.threads < 1:
        parser.error('--threads must be at least 1')
    if args.max_runs is not None and args.max_runs < 0:
        parser.error('--max-runs must not be negative')
    return args


# ----------------------------------------------------------------- settings


@dataclass
class Setting:
    """One combination of option values.

    Attributes:
        name (str): Its row in the table and the folder of its runs.
        options (dict): ``{dotted key: value}`` relative to the config (and
            the sweep's common options); empty for the default.
    """
    name: str
    options: Dict[str, Any] = field(default_factory=dict)


def format_value(value: Any) -> str:
    """``value`` as text that ``--cfg-options`` parses back to it.

    Raises:
        UserError: The value cannot go through ``--cfg-options`` (a string
            with a comma, a space, a quote or a bracket; a dict).

    Example:
        >>> format_value([0.5, 'auto']), format_value(None)
        ('[0.5,auto]', 'None')
    """
    from mmpkkd.utils import USAGE_EXIT, UserError
    if isinstance(value, dict):
        raise UserError(
            f'the value {value!r} is a mapping, which --cfg-options cannot '
            'pass; set its keys one by one (KEY.SUBKEY=VALUE).', USAGE_EXIT)
    if isinstance(value, (list, tuple)):
        inner = ','.join(format_value(v) for v in value)
        text = f'[{inner}]' if isinstance(value, list) else f'({inner},)' \
            if len(value) == 1 else f'({inner})'
    elif isinstance(value, bool) or value is None:
        text = str(value)
    elif isinstance(value, (int, float)):
        text = repr(value)
    else:
        text = str(value)
    if DictAction._parse_iterable(text) != value:
        raise UserError(
            f'the value {value!r} cannot be passed through --cfg-options '
            '(it would read back as '
            f'{DictAction._parse_iterable(text)!r}); write it in a config '
            'file instead.', USAGE_EXIT)
    return text


def lookup(tree: Any, key: str) -> Any:
    """The value at a dotted key of a config dict (list items by index),
    or ``_MISSING``."""
    node = tree
    for part in key.split('.'):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.isdigit() and int(
                part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def factor_values(factor: str, values: Any) -> List[Dict[str, Any]]:
    """The option dicts of one factor: ``KEY: [v1, v2]`` gives
    ``[{KEY: v1}, {KEY: v2}]``; mapping values are taken as they are (keys
    set together, plus an optional ``name``)."""
    from mmpkkd.utils import USAGE_EXIT, UserError
    if not isinstance(values, (list, tuple)):
        values = [values]
    out = []
    for value in values:
        if isinstance(value, dict):
            out.append(dict(value))
        elif '.' not in factor:
            raise UserError(
                f'factor {factor!r}: a value that is not a mapping needs '
                'the factor to be a dotted config key (e.g. '
                'model.loss_blend.alpha); a named factor lists mappings '
                '{key: value, ...}.', USAGE_EXIT)
        else:
            out.append({factor: value})
    return out


def setting_name(options: Dict[str, Any]) -> str:
    """``default``, or ``key=value`` pairs joined by ``,`` with characters
    other than letters, digits and ``._=+-,`` replaced by ``_``.

    Example:
        >>> setting_name({'model.loss_blend.alpha': 0.5})
        'model.loss_blend.alpha=0.5'
    """
    if not options:
        return DEFAULT_NAME
    text = ','.join(f'{k}={format_value(v)}' for k, v in options.items())
    return ''.join(c if c.isalnum() or c in '._=+-,' else '_' for c in text)


def expand_settings(spec: Dict[str, Any], base: Dict[str, Any]
                    ) -> List[Setting]:
    """The settings of a spec, relative to ``base`` (the config with the
    common options applied, as a dict).

    Options equal to the base's value are dropped, so the one-at-a-time
    value that is the default's own is the ``default`` row; settings that
    end up with the same options are one setting (the first name wins).
    Order: the default (with ``one_at_a_time``), the one-at-a-time values
    factor by factor, the grid, the explicit settings.

    Raises:
        UserError: Two different settings with one name.
    """
    from mmpkkd.utils import USAGE_EXIT, UserError
    raw: List[Dict[str, Any]] = []
    oat = spec.get('one_at_a_time') or {}
    if oat:
        raw.append({})
    for factor, values in oat.items():
        raw.extend(factor_values(factor, values))
    grid = spec.get('grid') or {}
    if grid:
        axes = [factor_values(f, v) for f, v in grid.items()]
        for combo in itertools.product(*axes):
            merged: Dict[str, Any] = {}
            for part in combo:
                merged.update(part)
            raw.append(merged)
    for item in spec.get('settings') or []:
        if not isinstance(item, dict):
            raise UserError(
                f'settings: each entry is a mapping {{key: value}}, got '
                f'{item!r}.', USAGE_EXIT)
        raw.append(dict(item))

    settings: List[Setting] = []
    by_options: Dict[str, Setting] = {}
    for options in raw:
        name = options.pop('name', None)
        kept = {k: v for k, v in options.items() if lookup(base, k) != v}
        ident = json.dumps(sorted((k, repr(v)) for k, v in kept.items()))
        if ident in by_options:
            continue
        setting = Setting(str(name) if name else setting_name(kept), kept)
        clash = [s for s in settings if s.name == setting.name]
        if clash:
            raise UserError(
                f'two settings are named {setting.name!r}: {clash[0].options}'
                f' and {kept}; give them different names.', USAGE_EXIT)
        by_options[ident] = setting
        settings.append(setting)
    return settings


def load_spec(args: argparse.Namespace) -> Dict[str, Any]:
    """The spec file (if any) merged with the command line."""
    from mmpkkd.utils import INPUT_EXIT, USAGE_EXIT, UserError
    from mmpkkd.utils.config import missing_file_message
    spec: Dict[str, Any] = {}
    if args.spec:
        if not osp.isfile(args.spec):
            raise UserError(missing_file_message(args.spec, 'spec'),
                            USAGE_EXIT)
        import yaml
        with open(args.spec) as f:
            try:
                spec = yaml.safe_load(f) or {}
            except yaml.YAMLError as err:
                raise UserError(f'spec {args.spec} is not valid YAML/JSON: '
                                f'{err}', INPUT_EXIT) from err
        if not isinstance(spec, dict):
            raise UserError(f'spec {args.spec} must be a mapping with keys '
                            f'{", ".join(SPEC_KEYS)}.', INPUT_EXIT)
        unknown = sorted(set(spec) - set(SPEC_KEYS))
        if unknown:
            raise UserError(
                f'spec {args.spec}: unknown key(s) {", ".join(unknown)}; '
                f'known: {", ".join(SPEC_KEYS)}.', INPUT_EXIT)
    spec = dict(spec)
    spec['options'] = {**(spec.get('options') or {}), **args.options}
    spec['one_at_a_time'] = {**(spec.get('one_at_a_time') or {}),
                             **args.one_at_a_time}
    spec['grid'] = {**(spec.get('grid') or {}), **args.grid}
    cli_settings = []
    for pairs in args.setting:
        setting: Dict[str, Any] = {}
        for pair in pairs:
            key, sep, text = pair.partition('=')
            if not sep:
                raise UserError(f'--setting {pair}: expected KEY=VALUE.',
                                USAGE_EXIT)
            setting[key] = text if key == 'name' else \
                DictAction._parse_iterable(text)
        cli_settings.append(setting)
    spec['settings'] = list(spec.get('settings') or []) + cli_settings
    seeds = args.seeds if args.seeds else (spec.get('seeds') or [0])
    if not isinstance(seeds, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise UserError(f'seeds must be a list of integers, got {seeds!r}.',
                        USAGE_EXIT)
    if len(set(seeds)) != len(seeds):
        raise UserError(f'seeds {seeds} repeat a seed.', USAGE_EXIT)
    spec['seeds'] = seeds
    spec['metric'] = args.metric or spec.get('metric') or 'accuracy/top1'
    if not (spec['one_at_a_time'] or spec['grid'] or spec['settings']):
        spec['settings'] = [{}]  # the config as it is, over the seeds
    if SEED_KEY in spec['options'] or any(
            SEED_KEY in s for s in spec['settings']):
        raise UserError(f'{SEED_KEY} is set per run from the seeds; use '
                        '--seeds (or the spec\'s seeds) instead.', USAGE_EXIT)
    return spec


# --------------------------------------------------------------------- runs


@dataclass
class Run:
    """One training: a setting and a seed.

    Attributes:
        setting (Setting): Its setting.
        seed (int): Its seed.
        work_dir (str): Its work dir.
        options (dict): Every ``--cfg-options`` of the run, as text.
        final_step (int): The last epoch (or iteration) of the training.
        config_hash (str): Hash of the run's resolved config (without the
            seed), to notice a config edited between sittings.
    """
    setting: Setting
    seed: int
    work_dir: str
    options: Dict[str, str]
    final_step: int
    config_hash: str

    @property
    def label(self) -> str:
        return f'{self.setting.name} seed {self.seed}'


def config_hash(cfg) -> str:
    text = json.dumps(cfg.to_dict(), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def final_step(cfg) -> int:
    """The training's last epoch (epoch-based) or iteration."""
    train_cfg = cfg.get('train_cfg') or {}
    step = train_cfg.get('max_epochs') or train_cfg.get('max_iters')
    if not step:
        from mmpkkd.utils import INPUT_EXIT, UserError
        raise UserError('the config has no train_cfg.max_epochs or '
                        'max_iters: the sweep cannot tell when a run is '
                        'finished.', INPUT_EXIT)
    return int(step)


def plan_runs(config: str, spec: Dict[str, Any], out_dir: str
              ) -> Tuple[List[Setting], List[Run], str]:
    """Every setting, checked against the config, its runs in order
    (seed by seed), and the unit of training (``'epoch'`` or
    ``'iteration'``).

    Raises:
        UserError: An option names a key the config does not have, or a
            value cannot go through ``--cfg-options``.
    """
    from mmpkkd.utils import read_config
    base_options = dict(spec['options'])
    base_cfg = read_config(config, base_options, option_name='options')
    if base_cfg.get('val_cfg') is None or base_cfg.get(
            'val_dataloader') is None:
        from mmpkkd.utils import INPUT_EXIT, UserError
        raise UserError(f'config {config} has no validation: the sweep '
                        'tabulates the validation metric.', INPUT_EXIT)
    settings = expand_settings(spec, base_cfg.to_dict())
    resolved = {}
    for setting in settings:
        options = {**base_options, **setting.options}
        cfg = read_config(config, options,
                          option_name=f'setting {setting.name!r}, option')
        text = {k: format_value(v) for k, v in options.items()}
        resolved[setting.name] = (text, final_step(cfg), config_hash(cfg))
    runs = []
    for seed in spec['seeds']:
        for setting in settings:
            text, step, digest = resolved[setting.name]
            runs.append(
                Run(setting, seed,
                    osp.join(out_dir, setting.name, f'seed_{seed}'),
                    {**text, SEED_KEY: str(seed)}, step, digest))
    unit = 'epoch' if (base_cfg.get('train_cfg') or {}).get(
        'max_epochs') else 'iteration'
    return settings, runs, unit


def read_record(work_dir: str) -> Optional[dict]:
    path = osp.join(work_dir, RUN_FILE)
    if not osp.isfile(path):
        return None
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError:
            return None  # cut off by a crash while writing: rebuilt below


def write_json(path: str, data: Any) -> None:
    """Write ``data`` as JSON atomically (a crash leaves the old file)."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def new_record(run: Run, config: str) -> dict:
    return dict(config=config, setting=run.setting.name, seed=run.seed,
                options=run.options, config_hash=run.config_hash,
                status='new', attempts=[], result=None)


def check_record(run: Run, record: dict) -> None:
    """Refuse a work dir that holds a run of other options or config."""
    from mmpkkd.utils import USAGE_EXIT, UserError
    if record.get('options') != run.options:
        raise UserError(
            f'{run.work_dir} holds a run with other options '
            f'({record.get("options")}) than this sweep gives it '
            f'({run.options}). Sweep into another --out-dir, or delete that '
            'folder to train it again.', USAGE_EXIT)
    if record.get('config_hash') != run.config_hash:
        raise UserError(
            f'{run.work_dir} holds a run of a different config: the config '
            'or its base files changed since. Sweep into another '
            '--out-dir, or delete that folder to train it again.',
            USAGE_EXIT)


def val_scalars(work_dir: str) -> Dict[str, Dict[int, float]]:
    """Validation scalars of a work dir, ``{key: {step: value}}``.

    Every attempt of a run writes ``<work_dir>/<timestamp>/vis_data/
    scalars.json`` (one JSON object per line; validation lines carry
    ``step`` and no ``loss``). Attempts are read oldest first, so a later
    one overrides the steps it repeats; a line cut off by a crash is
    skipped.
    """
    import glob
    merged: Dict[str, Dict[int, float]] = {}
    pattern = osp.join(glob.escape(work_dir), '*', 'vis_data',
                       'scalars.json')
    for path in sorted(glob.glob(pattern)):
        with open(path) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if 'loss' in rec or 'step' not in rec:
                    continue
                for key, value in rec.items():
                    if isinstance(value, (int, float)) and key != 'step':
                        merged.setdefault(key, {})[rec['step']] = value
    return merged


def final_metrics(work_dir: str, step: int, metric: str
                  ) -> Optional[Dict[str, Optional[float]]]:
    """The run's validation metric (and the teacher's, if logged) at the
    final step, or None when the logs have not got there."""
    scalars = val_scalars(work_dir)
    if step not in scalars.get(metric, {}):
        return None
    teacher = scalars.get(f'teacher/{metric}', {})
    return dict(val=float(scalars[metric][step]),
                teacher=float(teacher[step]) if step in teacher else None,
                step=step)


def checkpoint_step(path: str) -> Optional[int]:
    """N of ``epoch_N.pth`` / ``iter_N.pth``, else None."""
    name = osp.basename(path)
    for prefix in ('epoch_', 'iter_'):
        if name.startswith(prefix) and name.endswith('.pth'):
            number = name[len(prefix):-4]
            if number.isdigit():
                return int(number)
    return None


def resume_args(run: Run) -> List[str]:
    """``tools/train.py`` arguments that continue the run: [] for a new
    run, ``--resume`` from the last checkpoint, or from an earlier one when
    the last is the final step and its validation never ran."""
    from mmpkkd.runtime import LAST_CHECKPOINT, checkpoint_files
    saved = checkpoint_files(run.work_dir)
    if not saved:
        return []
    pointer = osp.join(run.work_dir, LAST_CHECKPOINT)
    last = None
    if osp.isfile(pointer):
        with open(pointer) as f:
            last = osp.join(run.work_dir, osp.basename(f.read().strip()))
    if last and osp.isfile(last) and checkpoint_step(last) != \
            run.final_step:
        return ['--resume', last]
    # the final checkpoint without its validation, or no pointer: go back
    # to the newest earlier checkpoint (training is exact across resumes)
    earlier = sorted(
        ((checkpoint_step(n), n) for n in saved
         if checkpoint_step(n) is not None
         and checkpoint_step(n) < run.final_step),
        reverse=True)
    if earlier:
        return ['--resume', osp.join(run.work_dir, earlier[0][1])]
    return ['--overwrite']


def pid_runs(pid: Optional[int], work_dir: str) -> bool:
    """Whether process ``pid`` is alive and trains into ``work_dir``."""
    if not pid:
        return False
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            cmdline = f.read().decode(errors='replace')
    except OSError:
        return False
    return osp.abspath(work_dir) in cmdline.split('\0')


def child_env(threads: Optional[int]) -> Dict[str, str]:
    """The environment of a run: the repository importable, and the
    thread count when ``--threads`` is given.

    Example:
        >>> child_env(1)['OMP_NUM_THREADS']
        '1'
    """
    env = dict(os.environ)
    paths = [REPO] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep)
                      if p]
    env['PYTHONPATH'] = os.pathsep.join(paths)
    if threads is not None:
        env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(threads)
    return env


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the sweep dies (Linux),
    so that a killed sweep leaves no training behind."""
    try:
        import ctypes
        libc = ctypes.CDLL('libc.so.6', use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def now() -> str:
    return datetime.datetime.now().isoformat(timespec='seconds')


class Child:
    """A running ``tools/train.py`` process of one run and its record."""

    def __init__(self, run: Run, record: dict, config: str,
                 threads: Optional[int], jobs: int) -> None:
        self.run, self.record = run, record
        extra = resume_args(run)
        options = [f'{k}={v}' for k, v in run.options.items()]
        cmd = [sys.executable, TRAIN_TOOL, config, '--work-dir',
               osp.abspath(run.work_dir), *extra, '--cfg-options', *options]
        os.makedirs(run.work_dir, exist_ok=True)
        self.log = open(osp.join(run.work_dir, LOG_FILE), 'a')
        self.log.write(f'\n===== {now()} sweep: {" ".join(cmd)}\n')
        self.log.flush()
        self.start = time.time()
        self.proc = subprocess.Popen(
            cmd, stdout=self.log, stderr=subprocess.STDOUT,
            env=child_env(threads),
            preexec_fn=_die_with_parent
            if sys.platform.startswith('linux') else None)
        self.attempt = dict(started=now(), elapsed_s=0.0, returncode=None,
                            pid=self.proc.pid, args=extra, threads=threads,
                            jobs=jobs)
        record['attempts'].append(self.attempt)
        record['status'] = 'running'
        self.save()
        self.saved_at = time.time()

    @property
    def how(self) -> str:
        args = self.attempt['args']
        if not args:
            return 'new'
        if args[0] == '--resume':
            return f'resuming from {osp.basename(args[1])}'
        return 'restarting'

    def save(self) -> None:
        self.attempt['elapsed_s'] = round(time.time() - self.start, 1)
        write_json(osp.join(self.run.work_dir, RUN_FILE), self.record)

    def heartbeat(self) -> None:
        if time.time() - self.saved_at >= HEARTBEAT_S:
            self.save()
            self.saved_at = time.time()

    def finish(self, returncode: int, metric: str) -> str:
        """Record the end of the attempt; return the run's status."""
        self.log.close()
        self.attempt['returncode'] = returncode
        result = final_metrics(self.run.work_dir, self.run.final_step,
                               metric) if returncode == 0 else None
        if result is not None:
            self.record['status'], self.record['result'] = 'done', result
        else:
            self.record['status'] = 'failed'
        self.save()
        return self.record['status']

    def stop(self) -> None:
        """Ask the training to stop (it resumes next time)."""
        if self.proc.poll() is None:
            self.proc.terminate()


def log_tail(work_dir: str, lines: int = 15) -> str:
    try:
        with open(osp.join(work_dir, LOG_FILE)) as f:
            return ''.join(f.readlines()[-lines:])
    except OSError:
        return ''


# -------------------------------------------------------------------- table


def mean_std(values: Sequence[float]) -> Tuple[Optional[float],
                                               Optional[float]]:
    """Mean and sample standard deviation (None for fewer than 2)."""
    if not values:
        return None, None
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else None


def summarize(settings: Sequence[Setting], records: Dict[Tuple[str, int],
                                                         dict]
              ) -> List[Dict[str, Any]]:
    """One row per setting from the finished runs' records: the metric's
    mean, std and n, the teacher's where logged, the mean wall-clock time,
    and the paired difference to the default over the seeds both have."""
    done: Dict[str, Dict[int, dict]] = {}
    for (name, seed), record in records.items():
        if record.get('status') == 'done' and record.get('result'):
            done.setdefault(name, {})[seed] = record
    default = done.get(DEFAULT_NAME, {})
    rows = []
    for setting in settings:
        runs = done.get(setting.name, {})
        seeds = sorted(runs)
        vals = [runs[s]['result']['val'] for s in seeds]
        teachers = [runs[s]['result']['teacher'] for s in seeds
                    if runs[s]['result'].get('teacher') is not None]
        walls = [sum(a['elapsed_s'] for a in runs[s]['attempts']) / 60
                 for s in seeds]
        row = dict(setting=setting.name, n=len(vals))
        row['val_mean'], row['val_std'] = mean_std(vals)
        row['teacher_mean'], row['teacher_std'] = mean_std(teachers)
        row['teacher_n'] = len(teachers)
        row['wall_min_mean'] = mean_std(walls)[0]
        diffs = [runs[s]['result']['val'] - default[s]['result']['val']
                 for s in seeds if s in default]
        if setting.name != DEFAULT_NAME and diffs:
            row['diff_mean'], row['diff_std'] = mean_std(diffs)
            row['diff_n'] = len(diffs)
        else:
            row['diff_mean'] = row['diff_std'] = row['diff_n'] = None
        row['seeds'] = ' '.join(map(str, seeds))
        row['options'] = ' '.join(f'{k}={format_value(v)}'
                                  for k, v in setting.options.items())
        rows.append(row)
    return rows


TABLE_COLUMNS = ('setting', 'n', 'val_mean', 'val_std', 'teacher_mean',
                 'teacher_std', 'teacher_n', 'diff_mean', 'diff_std',
                 'diff_n', 'wall_min_mean', 'seeds', 'options')
RUN_COLUMNS = ('setting', 'seed', 'status', 'val', 'teacher', 'wall_min',
               'attempts', 'work_dir')


def _cell(value: Any, digits: int) -> str:
    if value is None:
        return ''
    if isinstance(value, float):
        return f'{value:.{digits}f}'
    return str(value)


def _pm(mean: Optional[float], std: Optional[float], signed=False) -> str:
    if mean is None:
        return '–'
    text = f'{mean:+.2f}' if signed else f'{mean:.2f}'
    return text + (f' ± {std:.2f}' if std is not None else '')


def write_tables(out_dir: str, rows: List[Dict[str, Any]],
                 runs: List[Run], records: Dict[Tuple[str, int], dict],
                 header: Dict[str, Any]) -> None:
    """``results.csv``, ``results.md`` (per setting) and ``runs.csv``."""
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, 'results.csv'), 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(TABLE_COLUMNS)
        for row in rows:
            writer.writerow([_cell(row[c], 4) for c in TABLE_COLUMNS])
    with open(osp.join(out_dir, 'runs.csv'), 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(RUN_COLUMNS)
        for run in runs:
            record = records.get((run.setting.name, run.seed)) or {}
            result = record.get('result') or {}
            wall = sum(a['elapsed_s'] for a in record.get('attempts', []))
            writer.writerow([
                run.setting.name, run.seed, record.get('status', 'new'),
                _cell(result.get('val'), 4), _cell(result.get('teacher'), 4),
                _cell(wall / 60 if record.get('attempts') else None, 2),
                len(record.get('attempts', [])), run.work_dir
            ])
    metric = header['metric']
    teacher = any(row['teacher_n'] for row in rows)
    lines = [
        f'# Sweep of `{header["config"]}`', '',
        f'Validation `{metric}` (%) after the last {header["unit"]} of '
        'each run, mean ± sample std over n seeds'
        + (' (the PKKD student; the co-trained teacher beside it)'
           if teacher else '') + '. '
        'Δ default: the mean ± std over seeds of the per-seed difference '
        'to the default setting. Wall-clock: minutes per run, with the '
        'threads and parallel runs of the sitting that trained it.', '',
        f'Seeds: {" ".join(map(str, header["seeds"]))}. Options of every '
        f'run: {header["options"] or "none"}. Written {now()}.', ''
    ]
    head = ['setting', 'n', f'{metric} (%)']
    head += ['teacher (%)'] if teacher else []
    head += ['Δ default', 'wall-clock (min)', 'options']
    lines += ['| ' + ' | '.join(head) + ' |',
              '|' + '---|' * len(head)]
    for row in rows:
        cells = [row['setting'], str(row['n']),
                 _pm(row['val_mean'], row['val_std'])]
        if teacher:
            cells.append(_pm(row['teacher_mean'], row['teacher_std']))
        cells += [_pm(row['diff_mean'], row['diff_std'], signed=True),
                  _cell(row['wall_min_mean'], 1) or '–',
                  f'`{row["options"]}`' if row['options'] else '']
        lines.append('| ' + ' | '.join(cells) + ' |')
    with open(osp.join(out_dir, 'results.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')


# -------------------------------------------------------------------- sweep


class Interrupted(Exception):
    """SIGTERM (or SIGHUP) to the sweep: stop the runs, keep the records."""


def _raise_interrupted(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def lock_out_dir(out_dir: str):
    """An exclusive lock on the sweep folder, held until the process ends.

    Raises:
        UserError: Another sweep process holds it.
    """
    import fcntl
    from mmpkkd.utils import USAGE_EXIT, UserError
    os.makedirs(out_dir, exist_ok=True)
    handle = open(osp.join(out_dir, '.sweep.lock'), 'a+')
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        handle.seek(0)
        raise UserError(
            f'another sweep is running in {out_dir} (pid '
            f'{handle.read().strip() or "?"}); wait for it or stop it '
            'first.', USAGE_EXIT) from err
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def sweep(args: argparse.Namespace) -> int:
    """Plan, train what is missing, write the tables; return the exit
    status (0: every run finished; 1: some failed; 130: interrupted)."""
    from mmpkkd.utils import USAGE_EXIT, UserError
    from mmpkkd.utils.config import missing_file_message
    if not osp.isfile(args.config):
        raise UserError(missing_file_message(args.config, 'config'),
                        USAGE_EXIT)
    out_dir = args.out_dir or osp.join(
        'work_dirs', 'sweeps', osp.splitext(osp.basename(args.config))[0])
    spec = load_spec(args)
    settings, runs, unit = plan_runs(args.config, spec, out_dir)
    lock = lock_out_dir(out_dir)  # noqa: F841  (held while we run)
    write_json(osp.join(out_dir, 'sweep.json'), dict(
        config=args.config, seeds=spec['seeds'], metric=spec['metric'],
        options={k: format_value(v) for k, v in spec['options'].items()},
        settings=[dict(name=s.name, options={
            k: format_value(v) for k, v in s.options.items()})
                  for s in settings]))
    header = dict(config=args.config, metric=spec['metric'],
                  seeds=spec['seeds'], unit=unit,
                  options=' '.join(f'{k}={format_value(v)}'
                                   for k, v in spec['options'].items()))

    records: Dict[Tuple[str, int], dict] = {}
    todo: List[Run] = []
    for run in runs:
        record = read_record(run.work_dir)
        if record is not None:
            check_record(run, record)
        else:
            record = new_record(run, args.config)
        last = record['attempts'][-1] if record['attempts'] else {}
        if record['status'] == 'running' and pid_runs(
                last.get('pid'), run.work_dir):
            raise UserError(
                f'{run.work_dir} is being trained by process {last["pid"]}'
                ' (left by an earlier sweep); stop it first.', USAGE_EXIT)
        if record['status'] != 'done':
            result = final_metrics(run.work_dir, run.final_step,
                                   spec['metric'])
            if result is not None:  # finished, but the sweep died first
                record['status'], record['result'] = 'done', result
                write_json(osp.join(run.work_dir, RUN_FILE), record)
        records[(run.setting.name, run.seed)] = record
        if record['status'] != 'done':
            todo.append(run)

    print(f'sweep: {len(settings)} setting(s) x {len(spec["seeds"])} '
          f'seed(s) = {len(runs)} runs in {out_dir}: '
          f'{len(runs) - len(todo)} finished, {len(todo)} to train')
    if args.dry_run:
        for run in runs:
            record = records[(run.setting.name, run.seed)]
            state = record['status']
            if state != 'done':
                how = ' '.join(resume_args(run)) or 'a new run'
                state = f'to train ({how})' if state == 'new' else \
                    f'{state}, to train ({how})'
            print(f'  {run.label:<50} {state}')
    if args.max_runs is not None:
        todo = todo[:args.max_runs]
    if args.dry_run or not todo:
        write_tables(out_dir, summarize(settings, records), runs, records,
                     header)
        return 0

    code = train_runs(todo, records, settings, runs, header, args, spec,
                      out_dir)
    failed = [r for r in runs
              if records[(r.setting.name, r.seed)]['status'] == 'failed']
    if failed:
        print('sweep: failed runs (the next sweep tries them again):\n' +
              '\n'.join(f'  {r.label}: {r.work_dir}/{LOG_FILE}'
                        for r in failed))
        code = code or 1
    print(f'sweep: tables in {osp.join(out_dir, "results.md")} and '
          'results.csv')
    return code


def train_runs(todo: List[Run], records: Dict[Tuple[str, int], dict],
               settings: List[Setting], runs: List[Run],
               header: Dict[str, Any], args: argparse.Namespace,
               spec: Dict[str, Any], out_dir: str) -> int:
    """Train ``todo``, ``args.jobs`` at a time; 130 when interrupted."""
    if args.jobs > 1 and args.threads is None:
        print('sweep: note: --jobs > 1 without --threads: every run uses '
              "the machine's default thread count, and OpenMP threads of "
              'parallel runs compete for the cores')
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupted)
    started, finished = time.time(), 0
    queue, running = list(todo), []
    total = len(todo)
    code = 0
    try:
        while queue or running:
            while queue and len(running) < args.jobs:
                run = queue.pop(0)
                child = Child(run, records[(run.setting.name, run.seed)],
                              args.config, args.threads, args.jobs)
                running.append(child)
                print(f'[{now()}] start {run.label} ({child.how}): '
                      f'{run.work_dir}', flush=True)
            time.sleep(0.5)
            for child in list(running):
                returncode = child.proc.poll()
                if returncode is None:
                    child.heartbeat()
                    continue
                running.remove(child)
                status = child.finish(returncode, spec['metric'])
                finished += 1
                minutes = child.attempt['elapsed_s'] / 60
                if status == 'done':
                    result = child.record['result']
                    teacher = (f', teacher {result["teacher"]:.2f}'
                               if result['teacher'] is not None else '')
                    print(f'[{now()}] done  {child.run.label}: '
                          f'{spec["metric"]} {result["val"]:.2f}{teacher} '
                          f'({minutes:.1f} min) [{finished}/{total}]',
                          flush=True)
                elif returncode == 0:
                    print(f'[{now()}] FAILED {child.run.label}: training '
                          f'ended without {spec["metric"]!r} after its last '
                          f'{header["unit"]} ({child.run.final_step}) in '
                          'its logs; is --metric the validation metric\'s '
                          'name?', flush=True)
                else:
                    print(f'[{now()}] FAILED {child.run.label} (exit '
                          f'{returncode}, {minutes:.1f} min); end of '
                          f'{LOG_FILE}:\n{log_tail(child.run.work_dir)}',
                          flush=True)
                write_tables(out_dir, summarize(settings, records), runs,
                             records, header)
    except (KeyboardInterrupt, Interrupted) as err:
        print(f'sweep: interrupted ({err or "Ctrl-C"}); stopping '
              f'{len(running)} run(s), which resume next time', flush=True)
        for child in running:
            child.stop()
        deadline = time.time() + 60
        for child in running:
            try:
                child.proc.wait(max(1.0, deadline - time.time()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
            child.log.close()
            child.attempt['returncode'] = child.proc.returncode
            child.record['status'] = 'interrupted'
            child.save()
        code = 130
    finally:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
    write_tables(out_dir, summarize(settings, records), runs, records,
                 header)
    session = dict(started=datetime.datetime.fromtimestamp(
        started).isoformat(timespec='seconds'),
                   elapsed_s=round(time.time() - started, 1),
                   runs_ended=finished, jobs=args.jobs,
                   threads=args.threads, interrupted=code == 130)
    with open(osp.join(out_dir, 'sessions.jsonl'), 'a') as f:
        f.write(json.dumps(session) + '\n')
    print(f'sweep: {finished} run(s) ended in '
          f'{session["elapsed_s"] / 60:.1f} min (--jobs {args.jobs}, '
          f'--threads {args.threads or "default"})')
    return code


def main(argv=None) -> int:
    """Run the tool; errors propagate (for use from Python)."""
    args = parse_args(argv)
    import mmpkkd  # noqa: F401  (registers all modules; after --help)
    return sweep(args)


if __name__ == '__main__':
    cli_args = parse_args()
    import mmpkkd  # noqa: F401,E402  (after --help: keeps it quick)
    from mmpkkd.utils import report_errors  # noqa: E402
    with report_errors('sweep.py', cli_args.debug or None):
        sys.exit(sweep(cli_args))
