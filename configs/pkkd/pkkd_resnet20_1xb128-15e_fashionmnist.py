# PKKD adder ResNet-20 on Fashion-MNIST (28x28 grey images, one input
# channel): CNN teacher and ANN student co-trained from scratch. Trains on
# the first 50,000 training images and validates on the last 10,000; the
# official test split is for tools/test.py (docs/fashion_mnist.md).
# The distillation settings start from those of the digits config (teacher
# head LinearClsHead, T = 4, alpha = beta = 0.1, sigma 'auto'), the centre of
# the one-factor-at-a-time sweep on the val split in docs/fashion_mnist.md;
# the paper-style values of the model base are alpha = beta = 1.
_base_ = [
    '../_base_/models/pkkd_cifar_resnet20.py',
    '../_base_/datasets/fashion_mnist.py',
    '../_base_/schedules/fashionmnist_bs128_15e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    student=dict(backbone=dict(in_channels=1)),
    teacher=dict(backbone=dict(in_channels=1)),
    loss_mid=dict(loss_weight=0.1),  # beta
    loss_blend=dict(alpha=0.1),
)
# the data set's metric scores the student; the teacher's is logged beside
# it (a data set base sets val_evaluator, so the PKKD base cannot)
val_evaluator = [_base_.val_evaluator,
                 dict(_base_.val_evaluator, type='TeacherAccuracy')]
test_evaluator = val_evaluator
