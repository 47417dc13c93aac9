"""PKKD supervised terms: each network's own head loss, hard or soft labels."""

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.runner import set_random_seed
from pkkd_helpers import DIGITS_PKKD, batch, pkkd_cfg

from mmpkkd.registry import DATASETS, MODELS


pytestmark = pytest.mark.usefixtures('mmpkkd_scope')


def head_loss_cfg(student_loss=None, teacher_loss=None, **overrides):
    model = pkkd_cfg(**overrides)
    if student_loss is not None:
        model['student']['head']['loss'] = student_loss
    if teacher_loss is not None:
        model['teacher']['head']['loss'] = teacher_loss
    return model


def seeded_model(**kwargs):
    torch.manual_seed(0)
    model = MODELS.build(head_loss_cfg(**kwargs))
    model.init_weights()
    return model.train()


def soft_ce(logits: torch.Tensor, target: torch.Tensor) -> float:
    """``mean_i -sum_c target_ic log softmax(logits_i)_c`` in float64."""
    log_p = F.log_softmax(logits.double(), dim=1)
    return float(-(target.double() * log_p).sum(1).mean())


def test_label_smoothing_on_student_head_changes_its_loss_exactly():
    eps = 0.1
    inputs, samples = batch(6, seed=1)
    labels = torch.tensor([int(s.gt_label) for s in samples])
    plain = seeded_model()
    smooth = seeded_model(
        student_loss=dict(type='LabelSmoothLoss', label_smooth_val=eps))
    l_plain = plain(inputs, samples, mode='loss')
    l_smooth = smooth(inputs, samples, mode='loss')
    with torch.no_grad():  # train mode: BN uses this batch, as in the loss
        logits = plain.student(inputs, mode='tensor')
    one_hot = F.one_hot(labels, 10).double()
    ce = soft_ce(logits, one_hot)
    ls = soft_ce(logits, (1 - eps) * one_hot + eps / 10)
    diff = l_smooth['student.loss_cls'] - l_plain['student.loss_cls']
    assert diff.item() == pytest.approx(ls - ce, rel=1e-4, abs=1e-6)
    assert l_plain['student.loss_cls'].item() == pytest.approx(ce, rel=1e-5)
    assert ls - ce != pytest.approx(0.0, abs=1e-3)  # the case can fail
    # the teacher and the other student terms do not move
    for key in ('teacher.loss_cls', 'student.loss_kd', 'student.loss_mid'):
        torch.testing.assert_close(l_smooth[key], l_plain[key])


def test_head_loss_weight_and_teacher_head_loss_are_used():
    inputs, samples = batch(6, seed=1)
    plain = seeded_model()(inputs, samples, mode='loss')
    weighted = seeded_model(
        student_loss=dict(type='CrossEntropyLoss', loss_weight=0.25),
        teacher_loss=dict(type='CrossEntropyLoss', loss_weight=3.0))(
            inputs, samples, mode='loss')
    assert weighted['student.loss_cls'].item() == pytest.approx(
        0.25 * plain['student.loss_cls'].item(), rel=1e-5)
    assert weighted['teacher.loss_cls'].item() == pytest.approx(
        3.0 * plain['teacher.loss_cls'].item(), rel=1e-5)


def test_augments_on_a_sub_network_are_refused():
    student = pkkd_cfg()['student']
    student['train_cfg'] = dict(augments=[dict(type='Mixup', alpha=0.2)])
    with pytest.raises(ValueError, match='model.train_cfg'):
        MODELS.build(pkkd_cfg(student=student))


def test_mixup_pkkd_config_trains_on_digits_with_soft_targets():
    """mmpretrain-style ``train_cfg.augments`` on the distiller: both heads
    get Mixup's ``gt_score``, and a few optimizer steps run on digits."""
    set_random_seed(0)
    cfg = Config.fromfile(DIGITS_PKKD)
    cfg.model.train_cfg = dict(augments=[dict(type='Mixup', alpha=1.0)])
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(cfg.model)
    model.init_weights()
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train()

    data = model.data_preprocessor(
        pseudo_collate([dataset[i] for i in range(16)]), True)
    scores = torch.stack([s.gt_score for s in data['data_samples']])
    assert scores.shape == (16, 10)
    assert ((scores > 0).sum(1) > 1).any()  # really mixed: soft targets
    with model.student_capture.recording() as records:
        losses = model(**data, mode='loss')
    expected = soft_ce(records['head'].output.detach(), scores)
    assert losses['student.loss_cls'].item() == pytest.approx(
        expected, rel=1e-5)

    before = [p.detach().clone() for p in model.student.parameters()]
    for step in range(3):
        batch_ = pseudo_collate(
            [dataset[i] for i in range(16 * step, 16 * step + 16)])
        log_vars = model.train_step(batch_, optim_wrapper)
        assert all(torch.isfinite(torch.as_tensor(v))
                   for v in log_vars.values())
    assert any(not torch.equal(b, p)
               for b, p in zip(before, model.student.parameters()))
