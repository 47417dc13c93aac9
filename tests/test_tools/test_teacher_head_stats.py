"""tools/analysis_tools/teacher_head_stats.py against figures computed by hand.

The PKKD checkpoint is made so that every figure has a closed form: the
teacher's classifier has zero weights and the bias ``ln 2`` on class 3
(0 elsewhere), so every image gets the logits ``b = (0, 0, 0, ln 2, 0, ...)``
in either BN mode and whatever its batch; the student's last BatchNorm has
bias 0 after a zero classifier, so its logits are all 0 (uniform).
With 10 classes, at temperature ``T`` and ``r = 2 ** (1 / T)``:

* teacher logit std (unbiased, over classes): ``ln 2 * sqrt(0.1)``;
* ``p_t^T = (1, 1, 1, r, 1, ...) / (r + 9)``; its entropy, top probability
  ``r / (r + 9)`` and distance from uniform follow;
* cross-entropy gradient ``softmax(0) - onehot(y)``: norm ``sqrt(0.9)``
  for every label;
* KD gradient ``alpha * T * (1/10 - p_t^T)``;
* batch dependence 0; teacher top-1: the share of class 3 in the
  evaluation split, in both modes.
"""
import json
import math
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmpkkd.apis import get_model
from mmpkkd.registry import DATASETS

from conftest import REPO  # noqa: E402
CONFIG = 'configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py'
TEMPERATURES = (1.0, 2.0)


def hand_figures(alpha: float, share_of_class_3: float) -> dict:
    """The tool's figures for the checkpoint above, from the closed forms."""
    out = {
        'teacher_logit_std': math.log(2) * math.sqrt(0.1),
        'student_logit_std': 0.0,
        'ce_grad_norm': math.sqrt(0.9),
    }
    for temp in TEMPERATURES:
        r = 2**(1 / temp)
        top, rest = r / (r + 9), 1 / (r + 9)
        entropy = -(top * math.log(top) + 9 * rest * math.log(rest))
        kd = alpha * temp * math.sqrt((top - 0.1)**2 + 9 * (rest - 0.1)**2)
        out.update({
            f'T{temp:g}_teacher_entropy': entropy / math.log(10),
            f'T{temp:g}_teacher_top_prob': top,
            f'T{temp:g}_teacher_tv_from_uniform':
            0.5 * (top - 0.1 + 9 * (0.1 - rest)),
            f'T{temp:g}_kd_grad_norm': kd,
            f'T{temp:g}_kd_over_ce_grad': kd / math.sqrt(0.9),
            f'T{temp:g}_teacher_batch_tv': 0.0,
        })
    out['teacher_top1_eval_mode'] = 100 * share_of_class_3
    out['teacher_top1_train_mode'] = 100 * share_of_class_3
    return out


def test_figures_match_the_hand_computation(tmp_path):
    torch.manual_seed(0)
    model = get_model(osp.join(REPO, CONFIG))
    with torch.no_grad():
        model.teacher.head.fc.weight.zero_()
        model.teacher.head.fc.bias.zero_()
        model.teacher.head.fc.bias[3] = math.log(2)
        model.student.head.fc.weight.zero_()
        model.student.head.bn.bias.zero_()
    ckpt = str(tmp_path / 'pkkd.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    out = str(tmp_path / 'stats.json')
    proc = subprocess.run(
        [sys.executable, 'tools/analysis_tools/teacher_head_stats.py', CONFIG, ckpt,
         '--temperatures', *map(str, TEMPERATURES), '--batches', '1',
         '--shuffles', '2', '--json', out],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    figures = json.load(open(out))

    cfg = Config.fromfile(osp.join(REPO, CONFIG))
    with DefaultScope.overwrite_default_scope('mmpkkd'):
        labels = DATASETS.build(cfg.val_dataloader.dataset).get_gt_labels()
    share = float((labels == 3).mean())
    assert 0 < share < 1  # class 3 right and other classes wrong
    expected = hand_figures(cfg.model.loss_blend.alpha, share)
    assert sorted(figures) == sorted(expected)
    for key, value in expected.items():
        assert figures[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
