# CNN ResNet-20 on CIFAR-10, 1 GPU x 256 images, 400 epochs: the
# multiplicative twin of the adder ResNet-20 (the PKKD teacher, trained alone).
# Published: none quoted here (the reference tables list ANN and PKKD only).
# Measured: not trained here.
_base_ = [
    '../_base_/models/cifar_resnet20.py',
    '../_base_/datasets/cifar10.py',
    '../_base_/schedules/cifar_bs256_400e.py',
    '../_base_/default_runtime.py',
]
