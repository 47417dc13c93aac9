"""tools/run_demo.py (README command 1) end to end, at a tiny budget: its
console output and its table against the runs' own MMEngine records."""
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

from conftest import REPO  # noqa: E402

SEEDS = (0, 1)


def test_progress_line_hook_writes_one_line_per_run():
    """Off a terminal the hook writes nothing while training and one line
    when the run is tested; the job's ETA follows the clock."""
    import io
    from types import SimpleNamespace

    from mmengine.logging import MessageHub

    from mmpkkd.runtime.progress import (JobClock, ProgressLineHook,
                                         format_seconds)
    clock = JobClock([('ann', 2), ('pkkd', 2)])
    out = io.StringIO()
    hook = ProgressLineHook('ANN seed 0', 0, clock, stream=out)
    hub = MessageHub.get_instance('test_progress_line_hook')
    hub.update_scalar('train/loss', 0.5)
    runner = SimpleNamespace(epoch=0, max_epochs=2, message_hub=hub)
    hook.before_train(runner)
    hook.after_train_epoch(runner)
    runner.epoch = 1
    hook.after_train_epoch(runner)
    assert out.getvalue() == ''
    hook.after_test_epoch(runner, {'accuracy/top1': 91.25})
    line = out.getvalue()
    assert line.count('\n') == 1
    assert line.startswith('[1/2] ANN seed 0: 2 epochs in ')
    assert line.endswith('test top-1 91.25 %\n')
    # PKKD has not run yet: its 2 epochs are guessed at the ANN's rate
    rate = clock.rate['ann']
    assert rate > 0
    assert clock.seconds_left(0, 2) == pytest.approx(2 * rate)
    assert clock.seconds_left(0, 1) == pytest.approx(3 * rate)
    assert format_seconds(42) == '42 s'
    assert format_seconds(210) == '3.5 min'
    assert format_seconds(4320) == '1.2 h'


def test_job_clock_uses_each_kinds_own_rate():
    from mmpkkd.runtime.progress import JobClock
    clock = JobClock([('ann', 10), ('pkkd', 10), ('ann', 10), ('pkkd', 10)])
    assert clock.seconds_left(0, 0) is None  # nothing measured yet
    clock.update(0, epochs_done=10, seconds=100.0)  # ANN: 10 s per epoch
    clock.update(1, epochs_done=4, seconds=60.0)  # PKKD: 15 s per epoch
    # 6 PKKD epochs left, then 10 ANN and 10 PKKD epochs
    assert clock.seconds_left(1, 4) == 6 * 15 + 10 * 10 + 10 * 15


def test_demo_end_to_end_table_matches_the_runs(tmp_path):
    work = tmp_path / 'demo'
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    env.pop('MMPKKD_DEBUG', None)
    proc = subprocess.run(
        [sys.executable, 'tools/run_demo.py', '--work-dir', str(work),
         '--seeds', *map(str, SEEDS), '--epochs', '1', '--train-images',
         '64'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=230)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout

    # the console: one line per training, the table and the plot path;
    # MMEngine's environment and config dumps only in the log files
    lines = re.findall(r'^\[(\d)/4\] (ANN|PKKD) seed (\d): 1 epoch in .*'
                       r'test top-1 ([\d.]+) %', out, re.M)
    assert [(int(i), kind, int(seed)) for i, kind, seed, _ in lines] == [
        (1, 'ANN', 0), (2, 'PKKD', 0), (3, 'ANN', 1), (4, 'PKKD', 1)]
    assert 'System environment' not in out and 'Config:' not in out
    assert len(out.splitlines()) < 20, out
    assert f'Plot: {work / "results.png"}' in out
    for kind in ('ann', 'pkkd'):
        for seed in SEEDS:
            logs = glob.glob(str(work / f'{kind}_seed{seed}' / '*' / '*.log'))
            assert len(logs) == 1
            with open(logs[0]) as f:
                log = f.read()
            assert 'System environment' in log and 'Config:' in log

    # each run's test accuracy as MMEngine recorded it (<timestamp>.json)
    def recorded(kind, seed):
        files = glob.glob(
            str(work / f'{kind}_seed{seed}' / '*' / '*.json'))
        assert len(files) == 1, files
        with open(files[0]) as f:
            return json.load(f)

    expected = {'ann': [], 'pkkd': [], 'cnn': []}
    for seed in SEEDS:
        expected['ann'].append(recorded('ann', seed)['accuracy/top1'])
        pkkd = recorded('pkkd', seed)
        expected['pkkd'].append(pkkd['accuracy/top1'])
        expected['cnn'].append(pkkd['teacher/accuracy/top1'])

    with open(work / 'results.json') as f:
        saved = json.load(f)
    assert saved['seeds'] == list(SEEDS)
    for key, values in expected.items():
        assert saved['top1'][key] == pytest.approx(values, abs=1e-9)

    with open(work / 'results.md') as f:
        table = f.read()
    assert '1 epoch on the first 64 training images' in table
    assert table in out  # the table printed is the table written
    rows = {
        'cnn': 'CNN teacher (co-trained in PKKD)',
        'ann': 'ANN trained alone',
        'pkkd': 'ANN trained with PKKD'
    }
    for key, label in rows.items():
        row = next(r for r in table.splitlines() if r.startswith(f'| {label}'))
        cells = [c.strip() for c in row.strip('|').split('|')]
        values = expected[key]
        mean = sum(values) / len(values)
        std = (sum((v - mean)**2 for v in values) / (len(values) - 1))**0.5
        assert cells[1] == f'{mean:.2f} ± {std:.2f}'
        assert cells[2] == ', '.join(f'{v:.2f}' for v in values)
    assert osp.getsize(work / 'results.png') > 1000
