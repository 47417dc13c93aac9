# PKKD on CIFAR-10, 1 GPU x 256 images, 400 epochs: an adder VGG-small
# student and its CNN twin as teacher, both trained from scratch together.
# Published: 95.03 top-1 (the ANN alone: 93.72). Measured: not trained here.
_base_ = [
    '../_base_/models/pkkd_vgg_small.py',
    '../_base_/datasets/cifar10.py',
    '../_base_/schedules/cifar_bs256_400e.py',
    '../_base_/default_runtime.py',
]
# the data set's metric scores the student; TeacherAccuracy logs the
# co-trained teacher beside it (teacher/accuracy/top1)
val_evaluator = [_base_.val_evaluator,
                 dict(_base_.val_evaluator, type='TeacherAccuracy')]
test_evaluator = val_evaluator
