# CNN ResNet-56 on CIFAR-100: the ResNet-20 config with 9 blocks per stage.
# Published: none quoted here. Measured: not trained here.
_base_ = './cnn_resnet20_1xb256-400e_cifar100.py'
model = dict(backbone=dict(depth=56))
