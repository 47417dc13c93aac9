"""tools/analysis_tools/sweep.py and mmpkkd.experiments: settings, the table,
and a real sweep that is killed after its first run and continued.

The end-to-end test trains the digits CNN on a tiny subset (2 settings x 2
seeds, 3 epochs of 4 iterations). The table is checked against numbers
computed here from each run's own ``scalars.json``, not from the records
the tool wrote.
"""
import csv
import json
import os
import os.path as osp
import signal
import statistics
import subprocess
import sys
import time
from typing import Dict, List

import numpy as np
import pytest

from mmpkkd import experiments
from mmpkkd.utils import UserError
from tools.analysis_tools import sweep as sweep_tool

from conftest import REPO  # noqa: E402
CONFIG = 'configs/cnn/cnn_resnet20_1xb64-15e_digits.py'
EPOCHS = 3
TINY = [
    'train_dataloader.dataset.split=train_without_val',
    'train_dataloader.dataset.indices=128', 'train_dataloader.batch_size=32',
    'val_dataloader.dataset.split=val', 'val_dataloader.dataset.indices=64',
    f'train_cfg.max_epochs={EPOCHS}', 'train_cfg.val_interval=1',
    f'param_scheduler.T_max={EPOCHS}'
]
LR_KEY = 'optim_wrapper.optimizer.lr'
SEEDS = (0, 1)
RUN_ORDER = [('default', 0), (f'{LR_KEY}=0.05', 0), ('default', 1),
             (f'{LR_KEY}=0.05', 1)]


# ---------------------------------------------------------------- settings

BASE = {
    'model': {
        'head': {'type': 'LinearClsHead'},
        'loss_blend': {'alpha': 0.1, 'temperature': 4.0},
    },
    'layers': [{'sigma': 'auto'}],
}


def names_and_options(settings) -> List[tuple]:
    return [(s.name, s.options) for s in settings]


def test_one_at_a_time_varies_each_factor_around_the_default():
    spec = {
        'one_at_a_time': {
            'model.loss_blend.alpha': [0.1, 0.5, 1],  # 0.1 is the default
            'model.loss_blend.temperature': [1, 4],  # 4 == 4.0
            'model.head.type': 'BNLinearClsHead',  # a single value
            'sigma': [{'name': 'sigma=fixed', 'layers.0.sigma': 2.0}],
        }
    }
    assert names_and_options(experiments.expand_settings(spec, BASE)) == [
        ('default', {}),
        ('model.loss_blend.alpha=0.5', {'model.loss_blend.alpha': 0.5}),
        ('model.loss_blend.alpha=1', {'model.loss_blend.alpha': 1}),
        ('model.loss_blend.temperature=1',
         {'model.loss_blend.temperature': 1}),
        ('model.head.type=BNLinearClsHead',
         {'model.head.type': 'BNLinearClsHead'}),
        ('sigma=fixed', {'layers.0.sigma': 2.0}),
    ]


def test_grid_and_explicit_settings():
    spec = {
        'grid': {'model.loss_blend.alpha': [0.1, 1],
                 'model.loss_blend.temperature': [1, 4.0]},
        'settings': [{'model.loss_blend.alpha': 1,
                      'model.loss_blend.temperature': 1},  # in the grid
                     {'name': 'mine', 'model.head.type': 'X'}],
    }
    got = names_and_options(experiments.expand_settings(spec, BASE))
    a, t = 'model.loss_blend.alpha', 'model.loss_blend.temperature'
    assert got == [
        (f'{t}=1', {t: 1}),
        ('default', {}),
        (f'{a}=1,{t}=1', {a: 1, t: 1}),
        (f'{a}=1', {a: 1}),
        ('mine', {'model.head.type': 'X'}),
    ]
    clash = {'settings': [{'name': 'x', 'model.head.type': 'A'},
                          {'name': 'x', 'model.head.type': 'B'}]}
    with pytest.raises(UserError, match="two settings are named 'x'"):
        experiments.expand_settings(clash, BASE)


@pytest.mark.parametrize('value', ['a b', 'a,b', {'k': 1}, "'quoted'"])
def test_values_that_cannot_pass_through_cfg_options_are_refused(value):
    with pytest.raises(UserError):
        experiments.format_value(value)


def test_values_read_back_as_written():
    from mmengine.config import DictAction
    for value in (0.1, 1, 'auto', None, True, [130.0, 265.0, 'auto'],
                  (1, 2)):
        text = experiments.format_value(value)
        assert DictAction._parse_iterable(text) == value, text


def test_unknown_key_is_refused_before_any_training(tmp_path):
    spec = dict(options={}, one_at_a_time={'optim_wrapper.optimizer.lrr':
                                           [0.1]},
                grid={}, settings=[], seeds=[0], metric='accuracy/top1')
    with pytest.raises(UserError,
                       match=r'Did you mean optim_wrapper\.optimizer\.lr\?'):
        experiments.plan_runs(osp.join(REPO, CONFIG), spec, str(tmp_path))
    assert not os.listdir(tmp_path)


def test_threads_reach_the_children():
    env = sweep_tool.child_env(1)
    assert env['OMP_NUM_THREADS'] == env['MKL_NUM_THREADS'] == '1'
    assert env['PYTHONPATH'].split(os.pathsep)[0] == REPO


def test_final_metrics_read_the_last_attempt_and_the_teacher(tmp_path):
    """Two attempts of a PKKD run (the second resumed at epoch 2); the
    first attempt's log ends in a line cut off by the crash."""
    def write(stamp, lines):
        folder = tmp_path / stamp / 'vis_data'
        folder.mkdir(parents=True)
        (folder / 'scalars.json').write_text(''.join(lines))

    line = '{{"accuracy/top1": {}, "teacher/accuracy/top1": {}, ' \
        '"step": {}}}\n'
    write('20240101_000000', [
        '{"loss": 2.0, "epoch": 1, "iter": 1, "step": 1}\n',
        line.format(50.0, 40.0, 1), line.format(60.0, 45.0, 2),
        '{"accuracy/top1": 7'
    ])
    write('20240101_010000', [line.format(61.0, 46.0, 2),
                              line.format(70.5, 66.25, 3)])
    assert experiments.final_metrics(str(tmp_path), 3, 'accuracy/top1') == \
        dict(val=70.5, teacher=66.25, step=3)
    assert experiments.val_scalars(str(tmp_path))['accuracy/top1'] == {
        1: 50.0, 2: 61.0, 3: 70.5}
    assert experiments.final_metrics(str(tmp_path), 4, 'accuracy/top1') \
        is None


# ------------------------------------------------------------------- table


def record(val, teacher=None, minutes=1.0, status='done'):
    return dict(status=status,
                result=dict(val=val, teacher=teacher, step=5),
                attempts=[dict(elapsed_s=minutes * 60)])


def test_summary_statistics_and_paired_difference():
    settings = [experiments.Setting('default'),
                experiments.Setting('b', {'k': 2}),
                experiments.Setting('c', {'k': 3})]
    records = {
        ('default', 0): record(90.0, 91.0, 10),
        ('default', 1): record(92.0, 93.5, 12),
        ('default', 2): record(91.0, None, 11),
        ('b', 0): record(93.0, 90.0, 20),
        ('b', 2): record(92.5, 90.5, 22),
        ('b', 1): record(0.0, status='failed'),  # not counted
    }
    rows = {r['setting']: r
            for r in experiments.summarize(settings, records)}
    assert rows['default']['n'] == 3
    assert rows['default']['val_mean'] == pytest.approx(91.0)
    assert rows['default']['val_std'] == pytest.approx(
        np.std([90, 92, 91], ddof=1))
    assert rows['default']['teacher_n'] == 2
    assert rows['default']['teacher_mean'] == pytest.approx(92.25)
    assert rows['default']['teacher_std'] == pytest.approx(
        np.std([91, 93.5], ddof=1))
    assert rows['default']['wall_min_mean'] == pytest.approx(11.0)
    assert rows['default']['diff_mean'] is None
    # b against the default on the seeds both have (0 and 2)
    assert rows['b']['n'] == 2 and rows['b']['seeds'] == '0 2'
    assert rows['b']['diff_n'] == 2
    assert rows['b']['diff_mean'] == pytest.approx(((93 - 90) +
                                                    (92.5 - 91)) / 2)
    assert rows['b']['diff_std'] == pytest.approx(
        np.std([3.0, 1.5], ddof=1))
    assert rows['c']['n'] == 0 and rows['c']['val_mean'] is None


# ------------------------------------------------------------ end to end


def sweep_command(out_dir: str, *extra: str) -> List[str]:
    return [
        sys.executable, 'tools/analysis_tools/sweep.py', CONFIG, '--out-dir',
        out_dir, '--one-at-a-time', f'{LR_KEY}=0.05', '--seeds',
        *map(str, SEEDS), '--threads', '1', '--options', *TINY, *extra
    ]


def run_dir(out_dir: str, name: str, seed: int) -> str:
    return osp.join(out_dir, name, f'seed_{seed}')


def val_at_last_epoch(work_dir: str) -> float:
    """The run's validation accuracy after its last epoch, from the
    ``scalars.json`` of its runs (a resumed run has two)."""
    values = {}
    for stamp in sorted(os.listdir(work_dir)):
        path = osp.join(work_dir, stamp, 'vis_data', 'scalars.json')
        if osp.isfile(path):
            for line in open(path):
                rec = json.loads(line)
                if 'accuracy/top1' in rec:
                    values[rec['step']] = rec['accuracy/top1']
    return values[EPOCHS]


def read_csv(path: str) -> List[Dict[str, str]]:
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def attempts(out_dir: str, name: str, seed: int) -> List[dict]:
    with open(osp.join(run_dir(out_dir, name, seed), 'sweep_run.json')) as f:
        return json.load(f)['attempts']


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie awaiting its reaper does not)."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


def test_sweep_killed_after_its_first_run_continues(tmp_path):
    out = str(tmp_path / 'sweep')
    env = dict(os.environ, PYTHONPATH=REPO)
    first = run_dir(out, *RUN_ORDER[0])
    second = run_dir(out, *RUN_ORDER[1])

    # 1. kill the sweep (SIGKILL: no clean-up) while its second run trains
    proc = subprocess.Popen(sweep_command(out), cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    deadline = time.time() + 300
    while not osp.isfile(osp.join(second, 'epoch_1.pth')):
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() < deadline, 'the second run never started'
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert not osp.isfile(osp.join(second, f'epoch_{EPOCHS}.pth'))
    # the orphaned training is stopped with the sweep
    child = attempts(out, *RUN_ORDER[1])[-1]['pid']
    for _ in range(200):
        if not alive(child):
            break
        time.sleep(0.05)
    else:
        pytest.fail('the training outlived the killed sweep')
    finished_ckpt = osp.join(first, f'epoch_{EPOCHS}.pth')
    finished_mtime = os.stat(finished_ckpt).st_mtime_ns

    # 2. the same command, two runs at a time, finishes the sweep
    proc = subprocess.run(sweep_command(out, '--jobs', '2'), cwd=REPO,
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert '1 finished, 3 to train' in proc.stdout, proc.stdout
    assert 'resuming from epoch_1.pth' in proc.stdout, proc.stdout
    # the finished run was not trained again
    assert len(attempts(out, *RUN_ORDER[0])) == 1
    assert os.stat(finished_ckpt).st_mtime_ns == finished_mtime
    # the interrupted run resumed from its checkpoint: its second attempt
    # trained epochs 2 and 3 only
    tries = attempts(out, *RUN_ORDER[1])
    assert len(tries) == 2 and tries[1]['args'][0] == '--resume'
    stamps = sorted(d for d in os.listdir(second)
                    if osp.isdir(osp.join(second, d)))
    assert len(stamps) == 2
    with open(osp.join(second, stamps[1], 'vis_data', 'scalars.json')) as f:
        epochs = {json.loads(line).get('epoch') for line in f} - {None}
    assert epochs == {2, 3}

    # 3. the table, against the runs' own logs
    per_run = {(name, seed): val_at_last_epoch(run_dir(out, name, seed))
               for name, seed in RUN_ORDER}
    rows = {r['setting']: r for r in read_csv(osp.join(out, 'results.csv'))}
    assert set(rows) == {'default', f'{LR_KEY}=0.05'}
    for name in rows:
        vals = [per_run[(name, s)] for s in SEEDS]
        assert int(rows[name]['n']) == len(SEEDS)
        assert float(rows[name]['val_mean']) == pytest.approx(
            statistics.mean(vals), abs=1e-4)
        assert float(rows[name]['val_std']) == pytest.approx(
            statistics.stdev(vals), abs=1e-4)
        assert rows[name]['teacher_mean'] == ''  # a CNN has no teacher
        assert float(rows[name]['wall_min_mean']) > 0
    diffs = [per_run[(f'{LR_KEY}=0.05', s)] - per_run[('default', s)]
             for s in SEEDS]
    assert float(rows[f'{LR_KEY}=0.05']['diff_mean']) == pytest.approx(
        statistics.mean(diffs), abs=1e-4)
    runs = read_csv(osp.join(out, 'runs.csv'))
    assert [(r['setting'], int(r['seed'])) for r in runs] == RUN_ORDER
    assert all(r['status'] == 'done' for r in runs)
    with open(osp.join(out, 'results.md')) as f:
        markdown = f.read()
    mean, std = (statistics.mean([per_run[('default', s)] for s in SEEDS]),
                 statistics.stdev([per_run[('default', s)] for s in SEEDS]))
    assert f'| default | 2 | {mean:.2f} ± {std:.2f} |' in markdown

    # 4. the resumed run ends where an uninterrupted one does
    whole = str(tmp_path / 'whole')
    subprocess.run([
        sys.executable, 'tools/train.py', CONFIG, '--work-dir', whole,
        '--cfg-options', *TINY, f'{LR_KEY}=0.05', 'randomness.seed=0'
    ], cwd=REPO, env=dict(env, OMP_NUM_THREADS='1'), check=True,
                   capture_output=True)
    assert val_at_last_epoch(whole) == per_run[RUN_ORDER[1]]

    # 5. once more: nothing left to train
    proc = subprocess.run(sweep_command(out), cwd=REPO, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert '4 finished, 0 to train' in proc.stdout
    assert all(len(attempts(out, n, s)) == (2 if (n, s) == RUN_ORDER[1]
                                            else 1) for n, s in RUN_ORDER)


def test_changed_options_are_not_mixed_with_earlier_runs(tmp_path):
    out = str(tmp_path / 'sweep')
    spec = dict(options={}, one_at_a_time={}, grid={}, settings=[{}],
                seeds=[0], metric='accuracy/top1')
    _, runs, _ = experiments.plan_runs(osp.join(REPO, CONFIG), spec, out)
    experiments.write_json(
        osp.join(runs[0].work_dir, experiments.RUN_FILE),
        experiments.new_record(runs[0], CONFIG))
    spec['options'] = {'train_cfg.max_epochs': 2}
    _, runs, _ = experiments.plan_runs(osp.join(REPO, CONFIG), spec, out)
    record = experiments.read_record(runs[0].work_dir)
    with pytest.raises(UserError, match='other options'):
        experiments.check_record(runs[0], record)


# ------------------------------------------------- the specs in configs/

# each committed spec, the config it is run with, and its number of
# settings (the one-at-a-time default row included)
SPECS = {
    'pkkd_fashionmnist_oat.yaml':
    ('configs/pkkd/pkkd_resnet20_1xb128-15e_fashionmnist.py', 8),
    'pkkd_fashionmnist_ablations.yaml':
    ('configs/pkkd/pkkd_resnet20_1xb128-15e_fashionmnist.py', 3),
    'pkkd_fashionmnist_kernel_scan.yaml':
    ('configs/pkkd/pkkd_resnet20_1xb128-15e_fashionmnist.py', 10),
    'ann_fashionmnist_proxy.yaml':
    ('configs/ann/ann_resnet20_1xb128-15e_fashionmnist.py', 1),
    'cnn_fashionmnist_head.yaml':
    ('configs/cnn/cnn_resnet20_1xb128-15e_fashionmnist.py', 2),
    'pkkd_digits_oat.yaml':
    ('configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py', 8),
}


def test_every_spec_in_configs_is_checked_here():
    found = sorted(f for f in os.listdir(osp.join(REPO, 'configs', 'sweeps'))
                   if f.endswith(('.yaml', '.yml', '.json')))
    assert found == sorted(SPECS)


@pytest.mark.parametrize('spec_name', sorted(SPECS))
def test_committed_spec_plans_against_its_config(spec_name, tmp_path,
                                                 monkeypatch):
    """Every option key of the spec exists in its config, the values pass
    through --cfg-options, and the spec's own header names the config."""
    config, n_settings = SPECS[spec_name]
    spec_path = osp.join('configs', 'sweeps', spec_name)
    monkeypatch.chdir(REPO)
    with open(spec_path) as f:
        assert config in f.read()  # the command in the header comment
    args = sweep_tool.parse_args(
        [config, '--spec', spec_path, '--out-dir', str(tmp_path)])
    spec = sweep_tool.load_spec(args)
    settings, runs, unit = experiments.plan_runs(config, spec, str(tmp_path))
    assert len(settings) == n_settings
    assert len(runs) == n_settings * len(spec['seeds'])
    assert len(spec['seeds']) >= 3
    assert unit == 'epoch'
