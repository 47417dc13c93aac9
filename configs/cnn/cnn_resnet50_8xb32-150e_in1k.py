# CNN ResNet-50 on ImageNet-1k, 8 GPUs x 32 images, 150 epochs: the
# ResNet-18 config with bottleneck blocks.
# Published: 76.2 top-1 / 92.9 top-5. Measured: not trained here.
_base_ = './cnn_resnet18_8xb32-150e_in1k.py'
model = dict(backbone=dict(depth=50), head=dict(in_channels=2048))
