# CNN ResNet-20 on CIFAR-10.
# The multiplicative twin of the ANN config (the PKKD teacher alone).
_base_ = [
    '../_base_/models/cifar_resnet20.py',
    '../_base_/datasets/cifar10.py',
    '../_base_/schedules/cifar_bs256_400e.py',
    '../_base_/default_runtime.py',
]
