# CNN VGG-small on CIFAR-100, 1 GPU x 256 images, 400 epochs: the
# multiplicative twin of the adder VGG-small (the PKKD teacher, trained alone).
# Published: none quoted here. Measured: not trained here.
_base_ = [
    '../_base_/models/vgg_small.py',
    '../_base_/datasets/cifar100.py',
    '../_base_/schedules/cifar_bs256_400e.py',
    '../_base_/default_runtime.py',
]
model = dict(head=dict(num_classes=100, topk=(1, 5)))
