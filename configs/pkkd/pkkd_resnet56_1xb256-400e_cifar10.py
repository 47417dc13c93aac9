# PKKD adder ResNet-56 on CIFAR-10: the ResNet-20 config with 9 blocks per
# stage, distilling the last block of each stage.
# Published: none (same recipe as ResNet-20/32). Measured: not trained here.
_base_ = './pkkd_resnet20_1xb256-400e_cifar10.py'
model = dict(
    teacher=dict(backbone=dict(depth=56)),
    student=dict(backbone=dict(depth=56)),
    distill_layers=[
        'backbone.layer1.8.conv2',
        'backbone.layer2.8.conv2',
        'backbone.layer3.8.conv2',
    ],
)
