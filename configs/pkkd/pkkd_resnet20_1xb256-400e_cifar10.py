# PKKD on CIFAR-10, 1 GPU x 256 images, 400 epochs: an adder ResNet-20
# student and its CNN twin as teacher, both trained from scratch together.
# Published: 92.96 top-1 (the ANN alone: 92.02). Measured: not trained here.
# Tune alpha = beta with --cfg-options model.loss_blend.alpha=A
# model.loss_mid.loss_weight=A (configs/pkkd/README.md).
_base_ = [
    '../_base_/models/pkkd_cifar_resnet20.py',
    '../_base_/datasets/cifar10.py',
    '../_base_/schedules/cifar_bs256_400e.py',
    '../_base_/default_runtime.py',
]
# the data set's metric scores the student; TeacherAccuracy logs the
# co-trained teacher beside it (teacher/accuracy/top1)
val_evaluator = [_base_.val_evaluator,
                 dict(_base_.val_evaluator, type='TeacherAccuracy')]
test_evaluator = val_evaluator
