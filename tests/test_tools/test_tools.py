"""End to end through the command-line tools on the embedded digits data."""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch

from mmpkkd.engine import safe_torch_load

from conftest import REPO  # noqa: E402
# a subset of the digits so that an epoch is 2 iterations
FAST = [
    'train_dataloader.dataset.indices=128', 'val_dataloader.dataset.indices=60',
    'test_dataloader.dataset.indices=60', 'default_hooks.logger.interval=1',
    'train_cfg.val_interval=1'
]


def run(args, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        args, cwd=REPO, env=env, capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def train(config, work_dir, *extra, epochs=2, cfg=()):
    return run([
        sys.executable, 'tools/train.py', config, '--work-dir', work_dir,
        *extra, '--cfg-options', f'train_cfg.max_epochs={epochs}', *FAST,
        *cfg
    ])


def losses_by_step(work_dir: str) -> dict:
    """{(epoch, iter): loss} from every run's scalars.json in a work dir."""
    out = {}
    for stamp in sorted(os.listdir(work_dir)):
        path = osp.join(work_dir, stamp, 'vis_data', 'scalars.json')
        if not osp.isfile(path):
            continue
        for line in open(path):
            rec = json.loads(line)
            if 'loss' in rec:
                out[(rec['epoch'], rec['iter'])] = rec['loss']
    return out


@pytest.mark.parametrize('config', [
    'configs/cnn/cnn_resnet20_1xb64-15e_digits.py',
    'configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py'
])
def test_resume_continues_exactly(config, tmp_path):
    """A run interrupted after epoch 1 and resumed equals an uninterrupted
    one: same epoch-2 losses at every iteration, same final weights."""
    full, resumed = str(tmp_path / 'full'), str(tmp_path / 'resumed')
    train(config, full, epochs=2)
    os.makedirs(resumed)
    shutil.copy(osp.join(full, 'epoch_1.pth'), resumed)  # the crash point
    train(config, resumed, '--resume', osp.join(resumed, 'epoch_1.pth'),
          epochs=2)
    expected = {k: v for k, v in losses_by_step(full).items() if k[0] == 2}
    got = losses_by_step(resumed)
    assert len(expected) == 2 and got == expected
    a = safe_torch_load(osp.join(full, 'epoch_2.pth'))['state_dict']
    b = safe_torch_load(osp.join(resumed, 'epoch_2.pth'))['state_dict']
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(scope='module')
def pkkd_checkpoint(tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('pkkd'))
    train('configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py', work_dir,
          epochs=1)
    return osp.join(work_dir, 'epoch_1.pth')


def test_training_logs_the_gradient_shares(pkkd_checkpoint):
    """GradShareHook (default runtime) measures the student's gradient
    shares at the first iteration; they reach scalars.json and sum to 1."""
    work_dir = osp.dirname(pkkd_checkpoint)
    records = []
    for stamp in os.listdir(work_dir):
        path = osp.join(work_dir, stamp, 'vis_data', 'scalars.json')
        if osp.isfile(path):
            records += [json.loads(line) for line in open(path)]
    shares = [{k: v for k, v in rec.items() if '.grad_share.' in k}
              for rec in records if 'loss' in rec]
    assert shares and all(s == shares[0] for s in shares)
    assert sorted(shares[0]) == ['student.grad_share.cls',
                                 'student.grad_share.kd',
                                 'student.grad_share.mid']
    assert sum(shares[0].values()) == pytest.approx(1.0, abs=1e-3)
    assert shares[0]['student.grad_share.mid'] > 0  # beta > 0 in the config


def test_test_py_reports_student_and_teacher(pkkd_checkpoint, tmp_path):
    out = str(tmp_path / 'metrics.json')
    run([
        sys.executable, 'tools/test.py',
        'configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py', pkkd_checkpoint,
        '--work-dir',
        str(tmp_path), '--out', out, '--cfg-options', *FAST
    ])
    metrics = json.load(open(out))['metrics']
    assert set(metrics) == {'accuracy/top1', 'teacher/accuracy/top1'}


def test_extracted_student_matches_distiller(pkkd_checkpoint, tmp_path):
    student = str(tmp_path / 'student.pth')
    run([
        sys.executable, 'tools/model_converters/extract_student.py',
        pkkd_checkpoint, student
    ])
    keys = safe_torch_load(student)['state_dict'].keys()
    assert keys and not any(k.startswith(('teacher', 'student')) for k in keys)
    results = {}
    for name, config, ckpt in [
            ('pkkd', 'configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py',
             pkkd_checkpoint),
            ('ann', 'configs/ann/ann_resnet20_1xb64-15e_digits.py', student)]:
        out = str(tmp_path / f'{name}.json')
        run([
            sys.executable, 'tools/test.py', config, ckpt, '--work-dir',
            str(tmp_path / name), '--out', out, '--cfg-options', *FAST
        ])
        results[name] = json.load(open(out))['metrics']['accuracy/top1']
    assert results['ann'] == pytest.approx(results['pkkd'])


def test_dist_train_two_cpu_processes(tmp_path):
    work_dir = str(tmp_path / 'ddp')
    proc = run([
        'bash', 'tools/dist_train.sh',
        'configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py', '2',
        '--work-dir', work_dir, '--cfg-options', 'train_cfg.max_epochs=1',
        'env_cfg.dist_cfg.backend=gloo', *FAST
    ],
               timeout=600)
    log = proc.stdout + proc.stderr
    assert 'Distributed training: True' in log
    ckpt = safe_torch_load(osp.join(work_dir, 'epoch_1.pth'))
    assert any(k.startswith('student.') for k in ckpt['state_dict'])
    assert ckpt['meta']['iter'] == 1  # 128 images / (2 ranks x 64)


def test_amp_on_cpu_fails_clearly(tmp_path):
    if torch.cuda.is_available():
        pytest.skip('CUDA present: --amp is valid here')
    proc = subprocess.run([
        sys.executable, 'tools/train.py',
        'configs/cnn/cnn_resnet20_1xb64-15e_digits.py', '--amp', '--work-dir',
        str(tmp_path)
    ],
                          cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=REPO),
                          capture_output=True,
                          text=True)
    assert proc.returncode != 0 and '--amp needs a CUDA device' in proc.stderr
