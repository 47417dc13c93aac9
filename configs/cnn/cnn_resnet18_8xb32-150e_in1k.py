# CNN ResNet-18 on ImageNet-1k, 8 GPUs x 32 images, 150 epochs.
# Published: 69.8 top-1 / 89.1 top-5. Measured: not trained here.
_base_ = [
    '../_base_/models/resnet18_imagenet.py',
    '../_base_/datasets/imagenet.py',
    '../_base_/schedules/imagenet_bs256_150e.py',
    '../_base_/default_runtime.py',
]
