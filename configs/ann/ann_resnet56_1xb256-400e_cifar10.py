# Adder (ANN) ResNet-56 on CIFAR-10.
# No published number for this pair; same recipe as ResNet-20/32.
_base_ = [
    '../_base_/models/ann_cifar_resnet20.py',
    '../_base_/datasets/cifar10.py',
    '../_base_/schedules/cifar_bs256_400e.py',
    '../_base_/default_runtime.py',
]
model = dict(backbone=dict(depth=56))
