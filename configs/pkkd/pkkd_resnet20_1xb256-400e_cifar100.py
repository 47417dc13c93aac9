# PKKD on CIFAR-100, 1 GPU x 256 images, 400 epochs: an adder ResNet-20
# student and its CNN twin as teacher, both trained from scratch together.
# Published: 69.93 top-1 (the ANN alone: 67.60). Measured: not trained here.
_base_ = [
    '../_base_/models/pkkd_cifar_resnet20.py',
    '../_base_/datasets/cifar100.py',
    '../_base_/schedules/cifar_bs256_400e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    teacher=dict(head=dict(num_classes=100, topk=(1, 5))),
    student=dict(head=dict(num_classes=100, topk=(1, 5))),
)
# the data set's metric scores the student; TeacherAccuracy logs the
# co-trained teacher beside it (teacher/accuracy/top1)
val_evaluator = [_base_.val_evaluator,
                 dict(_base_.val_evaluator, type='TeacherAccuracy')]
test_evaluator = val_evaluator
