# PKKD adder ResNet-32 on CIFAR-100: CNN teacher and ANN student co-trained from scratch.
# Reproduces the published PKKD ANN top-1: 72.41 (AdderNet/PKKD papers).
# alpha = beta sweep: --cfg-options model.loss_blend.alpha=A model.loss_mid.loss_weight=A
# with A in {0.1, 0.5, 1, 5, 10} (see README).
_base_ = [
    '../_base_/models/pkkd_cifar_resnet20.py',
    '../_base_/datasets/cifar100.py',
    '../_base_/schedules/cifar_bs256_400e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    teacher=dict(backbone=dict(depth=32), head=dict(num_classes=100, topk=(1, 5))),
    student=dict(backbone=dict(depth=32), head=dict(num_classes=100, topk=(1, 5))),
    distill_layers=[
        'backbone.layer1.4.conv2',
        'backbone.layer2.4.conv2',
        'backbone.layer3.4.conv2',
    ],
)
# the data set's metric scores the student; the teacher's is logged beside
# it (a data set base sets val_evaluator, so the PKKD base cannot)
val_evaluator = [_base_.val_evaluator,
                 dict(_base_.val_evaluator, type='TeacherAccuracy')]
test_evaluator = val_evaluator
