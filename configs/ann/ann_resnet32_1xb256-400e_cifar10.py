# Adder ResNet-32 on CIFAR-10: the ResNet-20 config with 5 blocks per stage.
# Published: 93.01 top-1. Measured: not trained here.
_base_ = './ann_resnet20_1xb256-400e_cifar10.py'
model = dict(backbone=dict(depth=32))
