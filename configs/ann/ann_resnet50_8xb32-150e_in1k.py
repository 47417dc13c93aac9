# Adder (ANN) ResNet-50 on ImageNet.
# Reproduces the published ANN top-1: 74.9 / 91.7 top-5 (AdderNet/PKKD papers).
_base_ = [
    '../_base_/models/ann_resnet18_imagenet.py',
    '../_base_/datasets/imagenet.py',
    '../_base_/schedules/imagenet_bs256_150e.py',
    '../_base_/default_runtime.py',
]
model = dict(backbone=dict(depth=50), head=dict(in_channels=2048))
