# CNN ResNet-32 on CIFAR-100.
# The multiplicative twin of the ANN config (the PKKD teacher alone).
_base_ = [
    '../_base_/models/cifar_resnet20.py',
    '../_base_/datasets/cifar100.py',
    '../_base_/schedules/cifar_bs256_400e.py',
    '../_base_/default_runtime.py',
]
model = dict(backbone=dict(depth=32), head=dict(num_classes=100, topk=(1, 5)))
