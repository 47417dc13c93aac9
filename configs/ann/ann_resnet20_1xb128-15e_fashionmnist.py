# Adder (ANN) ResNet-20 on Fashion-MNIST, 1 GPU or CPU x 128 images, 15
# epochs: 28x28 grey images, one input channel. Trains on the first 50,000
# training images and validates on the last 10,000; the official test split
# is for tools/test.py only (docs/user_guides/dataset_prepare.md).
# Measured: not trained here at this budget; at small budgets (2,560 and
# 10,000 images, 4 epochs) see docs/results/fashion_mnist.md.
_base_ = [
    '../_base_/models/ann_cifar_resnet20.py',
    '../_base_/datasets/fashion_mnist.py',
    '../_base_/schedules/fashionmnist_bs128_15e.py',
    '../_base_/default_runtime.py',
]
model = dict(backbone=dict(in_channels=1))
