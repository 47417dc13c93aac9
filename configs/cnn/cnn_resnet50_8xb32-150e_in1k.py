# CNN ResNet-50 on ImageNet.
# Published CNN top-1: 76.2 / 92.9 top-5.
_base_ = [
    '../_base_/models/resnet18_imagenet.py',
    '../_base_/datasets/imagenet.py',
    '../_base_/schedules/imagenet_bs256_150e.py',
    '../_base_/default_runtime.py',
]
model = dict(backbone=dict(depth=50), head=dict(in_channels=2048))
