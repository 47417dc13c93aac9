# Adder ResNet-18 (AdderNet) on ImageNet-1k, 8 GPUs x 32 images, 150 epochs,
# trained alone.
# Published: 67.0 top-1 / 87.6 top-5. Measured: not trained here.
_base_ = [
    '../_base_/models/ann_resnet18_imagenet.py',
    '../_base_/datasets/imagenet.py',
    '../_base_/schedules/imagenet_bs256_150e.py',
    '../_base_/default_runtime.py',
]
