# Adder ResNet-20 (AdderNet): every block conv and 1x1 shortcut is an
# Adder2d + BN; the stem conv and the classifier stay multiplicative, and the
# classifier's logits are batch-normalised (BNLinearClsHead), as in AdderNet.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='CIFARResNet',
        depth=20,
        conv_cfg=dict(type='Adder2d', eta=0.2),
        stem_conv_cfg=None),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='BNLinearClsHead',
        num_classes=10,
        in_channels=64,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
    ))
