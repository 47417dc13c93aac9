# Adder ResNet-50 on ImageNet-1k: the ResNet-18 config with bottleneck blocks.
# Published: 74.9 top-1 / 91.7 top-5. Measured: not trained here.
_base_ = './ann_resnet18_8xb32-150e_in1k.py'
model = dict(backbone=dict(depth=50), head=dict(in_channels=2048))
