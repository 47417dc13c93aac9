# Adder (ANN) VGG-small on CIFAR-100.
# Reproduces the published ANN top-1: 72.64 (AdderNet/PKKD papers).
_base_ = [
    '../_base_/models/ann_vgg_small.py',
    '../_base_/datasets/cifar100.py',
    '../_base_/schedules/cifar_bs256_400e.py',
    '../_base_/default_runtime.py',
]
model = dict(head=dict(num_classes=100, topk=(1, 5)))
