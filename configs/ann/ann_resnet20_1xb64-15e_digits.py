# Adder (ANN) ResNet-20 on digits (scikit-learn).
# The demo network; results of tools/run_demo.py are in the README.
_base_ = [
    '../_base_/models/ann_cifar_resnet20.py',
    '../_base_/datasets/digits.py',
    '../_base_/schedules/digits_bs64_15e.py',
    '../_base_/default_runtime.py',
]
