# PKKD adder ResNet-20 on digits (scikit-learn): CNN teacher and ANN student co-trained from scratch.
# The demo network; results of tools/run_demo.py are in the README.
# alpha = beta sweep: --cfg-options model.loss_blend.alpha=A model.loss_mid.loss_weight=A
# with A in {0.1, 0.5, 1, 5, 10} (see README).
_base_ = [
    '../_base_/models/pkkd_cifar_resnet20.py',
    '../_base_/datasets/digits.py',
    '../_base_/schedules/digits_bs64_15e.py',
    '../_base_/default_runtime.py',
]
# student accuracy is the main metric; the teacher's is logged beside it
val_evaluator = [
    dict(type='Accuracy', topk=(1, )),
    dict(type='TeacherAccuracy', topk=(1, )),
]
test_evaluator = val_evaluator
