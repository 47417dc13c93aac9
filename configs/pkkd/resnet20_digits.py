# PKKD adder ResNet-20 on digits (scikit-learn): CNN teacher and ANN student co-trained from scratch.
# The demo network; results of tools/run_demo.py are in the README.
# alpha = beta = 0.1, the smallest value of the paper's sweep {0.1, 0.5, 1, 5,
# 10}: on digits the co-trained CNN ends weaker than the ANN alone (about 98.0
# vs 99.2 %), and at alpha = beta = 1 its pull cost the student 0.5-0.7 points
# (2 seeds); see README "Main job results".
_base_ = [
    '../_base_/models/pkkd_cifar_resnet20.py',
    '../_base_/datasets/digits.py',
    '../_base_/schedules/digits_bs64_15e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    loss_mid=dict(loss_weight=0.1),  # beta
    loss_blend=dict(alpha=0.1),
)
# student accuracy is the main metric; the teacher's is logged beside it
val_evaluator = [
    dict(type='Accuracy', topk=(1, )),
    dict(type='TeacherAccuracy', topk=(1, )),
]
test_evaluator = val_evaluator
