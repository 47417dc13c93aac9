"""Gradient shares read back from a run's scalars.json (MMEngine's format:
one JSON object per logged line) and summarised per setting."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from mmpkkd.experiments.shares import (logged_shares, share_summary,
                                       summarize_shares)

from conftest import REPO  # noqa: E402


def write_run(work_dir, measurements, repeats=3):
    """A run that measured ``measurements`` and logged each ``repeats``
    times (log lines between two measurements repeat the last one)."""
    folder = osp.join(work_dir, '20260101_000000', 'vis_data')
    os.makedirs(folder)
    with open(osp.join(folder, 'scalars.json'), 'w') as f:
        it = 0
        for shares in measurements:
            for _ in range(repeats):
                it += 2
                rec = {'lr': 0.1, 'loss': 1.0, 'iter': it, 'epoch': 1,
                       'step': it}
                rec.update({f'student.grad_share.{k}': v
                            for k, v in shares.items()})
                f.write(json.dumps(rec) + '\n')
        f.write(json.dumps({'accuracy/top1': 70.0, 'step': 4}) + '\n')


def test_one_entry_per_measurement_and_summary(tmp_path):
    m = [{'cls': 0.3, 'kd': 0.1, 'mid': 0.6},
         {'cls': 0.8, 'kd': 0.1, 'mid': 0.1},
         {'cls': 0.7, 'kd': 0.3, 'mid': 0.0}]
    write_run(str(tmp_path / 'a'), m)
    got = logged_shares(str(tmp_path / 'a'))
    assert [s for _, s in got] == m
    assert [it for it, _ in got] == [2, 8, 14]
    summary = share_summary(str(tmp_path / 'a'))
    assert summary['init'] == m[0]
    assert summary['train']['mid'] == pytest.approx(0.05)
    assert summary['train']['cls'] == pytest.approx(0.75)
    write_run(str(tmp_path / 'b'), [{'cls': 0.5, 'kd': 0.0, 'mid': 0.5}])
    both = summarize_shares([str(tmp_path / 'a'), str(tmp_path / 'b')])
    mean, std = both['train']['mid']
    assert mean == pytest.approx((0.05 + 0.5) / 2)
    assert std == pytest.approx(abs(0.5 - 0.05) / 2**0.5)
    assert share_summary(str(tmp_path / 'none')) is None


def test_sweep_shares_tool_table(tmp_path):
    out = tmp_path / 'sweep'
    write_run(str(out / 'beta=1' / 'seed_0'),
              [{'cls': 0.4, 'kd': 0.2, 'mid': 0.4},
               {'cls': 0.5, 'kd': 0.3, 'mid': 0.2}])
    (out / 'runs.csv').write_text(
        'setting,seed,status,val,teacher,wall_min,attempts,work_dir\n'
        'beta=1,0,done,71.5,60.25,3.0,1,elsewhere/beta=1/seed_0\n'
        'beta=1,1,failed,,,1.0,1,elsewhere/beta=1/seed_1\n')
    proc = subprocess.run(
        [sys.executable, 'tools/analysis_tools/sweep_shares.py', str(out)],
        cwd=REPO, capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=REPO))
    assert proc.returncode == 0, proc.stderr
    row = proc.stdout.strip().splitlines()[-1]
    assert row == '| beta=1 | 1 | 71.50 | 60.25 | 40.0 | 20.0 | 30.0 |'
    missing = subprocess.run(
        [sys.executable, 'tools/analysis_tools/sweep_shares.py',
         str(tmp_path / 'nothing')], cwd=REPO, capture_output=True,
        text=True, env=dict(os.environ, PYTHONPATH=REPO))
    assert missing.returncode == 2 and 'runs.csv' in missing.stderr
