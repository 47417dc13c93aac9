# Adder (ANN) ResNet-20 on CIFAR-10.
# Reproduces the published ANN top-1: 92.02 (AdderNet/PKKD papers).
_base_ = [
    '../_base_/models/ann_cifar_resnet20.py',
    '../_base_/datasets/cifar10.py',
    '../_base_/schedules/cifar_bs256_400e.py',
    '../_base_/default_runtime.py',
]
