# Adder ResNet-18: block convs and shortcuts are Adder2d, the 7x7 stem
# (stem_conv_cfg=None) and the classifier stay multiplicative.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='StemConvResNet',
        depth=18,
        out_indices=(3, ),
        conv_cfg=dict(type='Adder2d', eta=0.2),
        stem_conv_cfg=None),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='BNLinearClsHead',
        num_classes=1000,
        in_channels=512,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5),
    ))
