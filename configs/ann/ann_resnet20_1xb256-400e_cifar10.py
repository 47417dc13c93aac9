# Adder ResNet-20 (AdderNet) on CIFAR-10, 1 GPU x 256 images, 400 epochs,
# trained alone: every block conv and 1x1 shortcut is an adder layer.
# Published: 92.02 top-1. Measured: not trained here.
_base_ = [
    '../_base_/models/ann_cifar_resnet20.py',
    '../_base_/datasets/cifar10.py',
    '../_base_/schedules/cifar_bs256_400e.py',
    '../_base_/default_runtime.py',
]
