# CNN ResNet-18 (mmpretrain's ResNet with a separately configured stem).
# Set backbone.depth=50 and head.in_channels=2048 for ResNet-50.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='StemConvResNet', depth=18, out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=512,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5),
    ))
