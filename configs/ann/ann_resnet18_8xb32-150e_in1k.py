# Adder (ANN) ResNet-18 on ImageNet.
# Reproduces the published ANN top-1: 67.0 / 87.6 top-5 (AdderNet/PKKD papers).
_base_ = [
    '../_base_/models/ann_resnet18_imagenet.py',
    '../_base_/datasets/imagenet.py',
    '../_base_/schedules/imagenet_bs256_150e.py',
    '../_base_/default_runtime.py',
]
