# PKKD adder ResNet-18 on ImageNet: CNN teacher and ANN student co-trained from scratch.
# Reproduces the published PKKD ANN top-1: 68.8 / 88.6 top-5 (AdderNet/PKKD papers).
# alpha = beta sweep: --cfg-options model.loss_blend.alpha=A model.loss_mid.loss_weight=A
# with A in {0.1, 0.5, 1, 5, 10} (see README).
_base_ = [
    '../_base_/models/pkkd_resnet18_imagenet.py',
    '../_base_/datasets/imagenet.py',
    '../_base_/schedules/imagenet_bs256_150e.py',
    '../_base_/default_runtime.py',
]
# student accuracy is the main metric; the teacher's is logged beside it
val_evaluator = [
    dict(type='Accuracy', topk=(1, 5)),
    dict(type='TeacherAccuracy', topk=(1, 5)),
]
test_evaluator = val_evaluator
