# PKKD with a CNN ResNet-20 teacher and an adder ResNet-20 student, both
# from scratch; distils the last conv of each stage (before its BN).
model = dict(
    type='PKKDDistiller',
    teacher=dict(
        type='ImageClassifier',
        backbone=dict(type='CIFARResNet', depth=20),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=10,
            in_channels=64,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        )),
    student=dict(
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
        )),
    # module names inside the classifiers; the conv/adder output of each
    distill_layers=[
        'backbone.layer1.2.conv2',
        'backbone.layer2.2.conv2',
        'backbone.layer3.2.conv2',
    ],
    student_kernel=dict(type='LaplaceKernel', sigma='auto'),
    teacher_kernel=dict(type='GaussianKernel', sigma='auto'),
    connector='student',  # learnable 1x1 conv on the student side
    loss_mid=dict(type='KernelFeatureLoss', loss_weight=1.0),  # beta
    loss_blend=dict(type='BlendKDLoss', alpha=1.0, temperature=4.0),
)
