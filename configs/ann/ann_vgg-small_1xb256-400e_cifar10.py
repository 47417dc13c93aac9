# Adder VGG-small (AdderNet) on CIFAR-10, 1 GPU x 256 images, 400 epochs,
# trained alone: every conv but the first is an adder layer.
# Published: 93.72 top-1. Measured: not trained here.
_base_ = [
    '../_base_/models/ann_vgg_small.py',
    '../_base_/datasets/cifar10.py',
    '../_base_/schedules/cifar_bs256_400e.py',
    '../_base_/default_runtime.py',
]
