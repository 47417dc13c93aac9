# CNN ResNet-18 on ImageNet.
# Published CNN top-1: 69.8 / 89.1 top-5.
_base_ = [
    '../_base_/models/resnet18_imagenet.py',
    '../_base_/datasets/imagenet.py',
    '../_base_/schedules/imagenet_bs256_150e.py',
    '../_base_/default_runtime.py',
]
