# Adder VGG-small: all but the first conv are Adder2d; BN on the logits.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='VGGSmall', conv_cfg=dict(type='Adder2d', eta=0.2)),
    head=dict(
        type='BNLinearClsHead',
        num_classes=10,
        in_channels=512 * 4 * 4,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
    ))
