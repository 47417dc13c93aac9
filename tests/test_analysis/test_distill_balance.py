"""tools/analysis_tools/distill_balance.py on the digits PKKD config."""
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, tool_path  # noqa: E402

PKKD_DIGITS = 'configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py'


def test_balance_rows_and_mid_attribution(tmp_path):
    out = str(tmp_path / 'balance.json')
    proc = subprocess.run(
        [sys.executable, tool_path('distill_balance.py'), PKKD_DIGITS,
         '--iters', '3', '--every', '2', '--json', out, '--cfg-options',
         'model.loss_mid.loss_weight=0.5'],
        cwd=REPO, capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'connectors by themselves close' in proc.stdout
    result = json.load(open(out))
    rows = result['rows']
    assert [r['iter'] for r in rows] == [1, 2, 3]
    for row in rows:
        shares = [v for k, v in row.items() if '.grad_share.' in k]
        assert len(shares) == 3 and sum(shares) == pytest.approx(1, abs=1e-5)
    mid = result['mid_attribution']
    assert set(mid) == {'before', 'after', 'connectors_only',
                        'features_only'}
    # four different mixes of trained and initial weights: four values
    assert len({round(v, 6) for v in mid.values()}) == 4
    assert all(v > 0 for v in mid.values())


def test_a_plain_classifier_is_refused():
    proc = subprocess.run(
        [sys.executable, tool_path('distill_balance.py'),
         'configs/ann/ann_resnet20_1xb64-15e_digits.py'],
        cwd=REPO, capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=REPO))
    assert proc.returncode == 2
    assert 'not a distiller' in proc.stderr
