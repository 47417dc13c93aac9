# PKKD adder ResNet-32 on CIFAR-100: the ResNet-20 config with 5 blocks per
# stage, distilling the last block of each stage.
# Published: 72.41 top-1 (the ANN alone: 69.17). Measured: not trained here.
_base_ = './pkkd_resnet20_1xb256-400e_cifar100.py'
model = dict(
    teacher=dict(backbone=dict(depth=32)),
    student=dict(backbone=dict(depth=32)),
    distill_layers=[
        'backbone.layer1.4.conv2',
        'backbone.layer2.4.conv2',
        'backbone.layer3.4.conv2',
    ],
)
