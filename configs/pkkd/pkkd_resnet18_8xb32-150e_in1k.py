# PKKD on ImageNet-1k, 8 GPUs x 32 images, 150 epochs: an adder ResNet-18
# student and its CNN twin as teacher, both trained from scratch together.
# Published: 68.8 top-1 / 88.6 top-5 (the ANN alone: 67.0 / 87.6).
# Measured: not trained here.
_base_ = [
    '../_base_/models/pkkd_resnet18_imagenet.py',
    '../_base_/datasets/imagenet.py',
    '../_base_/schedules/imagenet_bs256_150e.py',
    '../_base_/default_runtime.py',
]
# the data set's metric scores the student; TeacherAccuracy logs the
# co-trained teacher beside it (teacher/accuracy/top1)
val_evaluator = [_base_.val_evaluator,
                 dict(_base_.val_evaluator, type='TeacherAccuracy')]
test_evaluator = val_evaluator
