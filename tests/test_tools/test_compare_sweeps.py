"""tools/analysis_tools/compare_sweeps.py: paired differences with a t interval,
checked on hand-written runs.csv files against hand-computed values."""
import csv
import os.path as osp
import subprocess
import sys

from conftest import REPO, tool_path  # noqa: E402
TOOL = osp.join(REPO, tool_path('compare_sweeps.py'))
FIELDS = ['setting', 'seed', 'status', 'val', 'teacher', 'wall_min',
          'attempts', 'work_dir']


def _write(folder, vals, teacher=None, extra=()):
    folder.mkdir()
    with open(folder / 'runs.csv', 'w', newline='') as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        for seed, v in vals.items():
            w.writerow(dict(setting='default', seed=seed, status='done',
                            val=v, teacher=teacher or '', wall_min=2.0,
                            attempts=1, work_dir='x'))
        for row in extra:
            w.writerow(row)
    return str(folder)


def test_paired_t_interval_hand_computed(tmp_path):
    base = _write(tmp_path / 'ann', {1: 80.0, 2: 81.0, 3: 82.0})
    # per-seed differences 1, 2, 3: mean 2, sample std 1; t(0.975, 2) =
    # 4.302653, half width 4.302653 / sqrt(3) = 2.4841
    other = _write(tmp_path / 'pkkd', {1: 81.0, 2: 83.0, 3: 85.0, 9: 50.0},
                   teacher=70.0,
                   extra=[dict(setting='default', seed=4, status='failed',
                               val='', teacher='', wall_min=0, attempts=1,
                               work_dir='x')])
    out = subprocess.run([sys.executable, TOOL, f'ann={base}',
                          f'pkkd={other}'], capture_output=True, text=True,
                         check=True).stdout
    line = next(row for row in out.splitlines()
                if row.startswith('| pkkd - ann'))
    assert '| 3 | +2.00 ± 1.00 | [-0.48, +4.48] | 3 / 0 |' in line
    assert '+1.00, +2.00, +3.00' in line  # seed 9 has no pair: left out
    assert '| pkkd | 4 | 74.75 ± ' in out  # unpaired table: all 4 seeds


def test_missing_folder_is_a_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, TOOL, f'a={tmp_path}/none',
                           f'b={tmp_path}/none'], capture_output=True,
                          text=True)
    assert proc.returncode != 0
    assert 'runs.csv does not exist' in proc.stderr


def test_one_method_from_two_folders(tmp_path):
    base = _write(tmp_path / 'ann', {1: 80.0, 2: 81.0})
    first = _write(tmp_path / 'p1', {1: 82.0})
    second = _write(tmp_path / 'p2', {2: 80.0})
    out = subprocess.run([sys.executable, TOOL, f'ann={base}',
                          f'pkkd={first},{second}'], capture_output=True,
                         text=True, check=True).stdout
    assert '| pkkd - ann | 2 | +0.50 ± 2.12 |' in out
    dup = subprocess.run([sys.executable, TOOL, f'ann={base}',
                          f'pkkd={first},{first}'], capture_output=True,
                         text=True)
    assert dup.returncode != 0 and 'appears twice' in dup.stderr
