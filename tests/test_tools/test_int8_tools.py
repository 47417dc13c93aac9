"""tools/deployment/quantize_int8.py and tools/test.py on its output."""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

from mmpkkd.apis import get_model
from mmpkkd.quantization import Int8Adder2d, load_int8
from mmpkkd.quantization import int8_layers

from conftest import REPO  # noqa: E402
CONFIG = osp.join(REPO, 'configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py')
# 60 test images are enough to compare the two tools' counts
FAST = ['--cfg-options', 'test_dataloader.dataset.indices=60']


def run(cmd):
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope='module')
def pkkd_checkpoint(tmp_path_factory):
    """An untrained PKKD distiller with BN statistics of random images
    (no training needed to exercise the tools)."""
    torch.manual_seed(0)
    net = get_model(CONFIG)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            m.momentum = None
            m.reset_running_stats()
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net.student(torch.randn(8, 3, 32, 32), mode='tensor')
    path = str(tmp_path_factory.mktemp('int8') / 'pkkd.pth')
    torch.save({'state_dict': net.state_dict(), 'meta': {}}, path)
    return path


def test_quantize_tool_then_test_py(pkkd_checkpoint, tmp_path):
    out = str(tmp_path / 'student_int8.pth')
    report = str(tmp_path / 'quant.json')
    run([
        sys.executable, 'tools/deployment/quantize_int8.py', CONFIG,
        pkkd_checkpoint, '--out', out, '--calib-batches', '1',
        '--max-samples', '4', '--json', report, *FAST
    ])
    quant = json.load(open(report))
    # percentages of the 60 test images: whole counts of them
    for key in ('int8_top1', 'float32_top1'):
        count = quant[key] * 60 / 100
        assert count == pytest.approx(round(count), abs=1e-6), (key, quant)
        assert 0 <= round(count) <= 60
    qmodel = load_int8(out)  # the student alone, with int8 layers
    assert len(int8_layers(qmodel)) == 20
    assert not hasattr(qmodel, 'teacher')
    assert all(isinstance(qmodel.get_submodule(n), Int8Adder2d)
               for n in int8_layers(qmodel))

    metrics_file = str(tmp_path / 'metrics.json')
    run([
        sys.executable, 'tools/test.py', CONFIG, out, '--work-dir',
        str(tmp_path / 'test'), '--out', metrics_file, *FAST
    ])
    metrics = json.load(open(metrics_file))['metrics']
    # no teacher in an int8 file: its metric is dropped; the student's
    # accuracy under mmpretrain's Accuracy equals the tool's own count
    assert set(metrics) == {'accuracy/top1'}
    assert metrics['accuracy/top1'] == pytest.approx(quant['int8_top1'],
                                                     abs=1e-4)
    # and so does the float student's, tested from the PKKD checkpoint
    float_file = str(tmp_path / 'float_metrics.json')
    run([
        sys.executable, 'tools/test.py', CONFIG, pkkd_checkpoint,
        '--work-dir', str(tmp_path / 'test_float'), '--out', float_file,
        *FAST
    ])
    metrics = json.load(open(float_file))['metrics']
    assert metrics['accuracy/top1'] == pytest.approx(quant['float32_top1'],
                                                     abs=1e-4)
