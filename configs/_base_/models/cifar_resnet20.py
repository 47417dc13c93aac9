# CNN ResNet-20 for 32x32 inputs (He et al. 2016): 16/32/64 channels,
# 3 basic blocks per stage. Set backbone.depth to 32 or 56 for the deeper
# members of the family.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='CIFARResNet', depth=20),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=64,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
    ))
