# Adder ResNet-32 on CIFAR-100: the ResNet-20 config with 5 blocks per stage.
# Published: 69.17 top-1. Measured: not trained here.
_base_ = './ann_resnet20_1xb256-400e_cifar100.py'
model = dict(backbone=dict(depth=32))
