# MobileNetV2 (width 0.5) as an adder network on CIFAR-10, 1 GPU x 256
# images, 400 epochs: mmpretrain's backbone unchanged, every conv built as an
# adder layer through conv_cfg, depthwise convs (groups = channels) and the
# stem included, since MobileNetV2 has no separate stem option. The worked
# example of configs/ann/README.md, "Make any backbone an adder network".
# Published: none. Measured: not trained here.
_base_ = [
    '../_base_/datasets/cifar10.py',
    '../_base_/schedules/cifar_bs256_400e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='MobileNetV2',
        widen_factor=0.5,
        conv_cfg=dict(type='Adder2d', eta=0.2),
        # AdderNet's N(0, 1) filters for the adder layers, after the Kaiming
        # init that mmengine also applies to Adder2d (a Conv2d subclass)
        init_cfg=[
            dict(type='Kaiming', layer=['Conv2d']),
            dict(type='Normal', layer=['Adder2d'], mean=0.0, std=1.0),
            dict(type='Constant', val=1, layer=['_BatchNorm']),
        ]),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='BNLinearClsHead',
        num_classes=10,
        in_channels=1280,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
