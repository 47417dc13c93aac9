# Adder (ANN) ResNet-32 on CIFAR-100.
# Reproduces the published ANN top-1: 69.17 (AdderNet/PKKD papers).
_base_ = [
    '../_base_/models/ann_cifar_resnet20.py',
    '../_base_/datasets/cifar100.py',
    '../_base_/schedules/cifar_bs256_400e.py',
    '../_base_/default_runtime.py',
]
model = dict(backbone=dict(depth=32), head=dict(num_classes=100, topk=(1, 5)))
