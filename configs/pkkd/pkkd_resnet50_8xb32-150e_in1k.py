# PKKD adder ResNet-50 on ImageNet-1k: the ResNet-18 config with bottleneck
# blocks, distilling the last block of each stage.
# Published: 76.8 top-1 / 93.3 top-5 (the ANN alone: 74.9 / 91.7).
# Measured: not trained here.
_base_ = './pkkd_resnet18_8xb32-150e_in1k.py'
model = dict(
    teacher=dict(backbone=dict(depth=50), head=dict(in_channels=2048)),
    student=dict(backbone=dict(depth=50), head=dict(in_channels=2048)),
    distill_layers=[
        'backbone.layer1.2.conv3',
        'backbone.layer2.3.conv3',
        'backbone.layer3.5.conv3',
        'backbone.layer4.2.conv3',
    ],
)
