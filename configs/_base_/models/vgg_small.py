# CNN VGG-small (AdderNet's CIFAR network): 6 convs 128-128/256-256/512-512,
# linear classifier on the flattened 512x4x4 map.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='VGGSmall'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=512 * 4 * 4,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
    ))
