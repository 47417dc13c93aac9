# PKKD adder ResNet-32 on CIFAR-10: the ResNet-20 config with 5 blocks per
# stage, distilling the last block of each stage.
# Published: 93.62 top-1 (the ANN alone: 93.01). Measured: not trained here.
_base_ = './pkkd_resnet20_1xb256-400e_cifar10.py'
model = dict(
    teacher=dict(backbone=dict(depth=32)),
    student=dict(backbone=dict(depth=32)),
    distill_layers=[
        'backbone.layer1.4.conv2',
        'backbone.layer2.4.conv2',
        'backbone.layer3.4.conv2',
    ],
)
