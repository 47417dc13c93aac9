# Adder ResNet-20 on scikit-learn's digits (ships with the package), 1 GPU or
# CPU x 64 images, 15 epochs, trained alone: one half of the README's main job
# (tools/run_demo.py).
# Measured (AVX-512 CPU): 99.41 +- 0.46 top-1 (seeds 0-2: 98.89, 99.78,
# 99.56). Per CPU kind: README.md.
_base_ = [
    '../_base_/models/ann_cifar_resnet20.py',
    '../_base_/datasets/digits.py',
    '../_base_/schedules/digits_bs64_15e.py',
    '../_base_/default_runtime.py',
]
