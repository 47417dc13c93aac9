# PKKD adder ResNet-50 on ImageNet: CNN teacher and ANN student co-trained from scratch.
# Reproduces the published PKKD ANN top-1: 76.8 / 93.3 top-5 (AdderNet/PKKD papers).
# alpha = beta sweep: --cfg-options model.loss_blend.alpha=A model.loss_mid.loss_weight=A
# with A in {0.1, 0.5, 1, 5, 10} (see README).
_base_ = [
    '../_base_/models/pkkd_resnet18_imagenet.py',
    '../_base_/datasets/imagenet.py',
    '../_base_/schedules/imagenet_bs256_150e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    teacher=dict(backbone=dict(depth=50), head=dict(in_channels=2048)),
    student=dict(backbone=dict(depth=50), head=dict(in_channels=2048)),
    distill_layers=[
        'backbone.layer1.2.conv3',
        'backbone.layer2.3.conv3',
        'backbone.layer3.5.conv3',
        'backbone.layer4.2.conv3',
    ],
)
# the data set's metric scores the student; the teacher's is logged beside
# it (a data set base sets val_evaluator, so the PKKD base cannot)
val_evaluator = [_base_.val_evaluator,
                 dict(_base_.val_evaluator, type='TeacherAccuracy')]
test_evaluator = val_evaluator
