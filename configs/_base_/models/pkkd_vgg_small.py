# PKKD with CNN VGG-small teacher and adder VGG-small student; distils the
# last conv of each stage (before its BN).
model = dict(
    type='PKKDDistiller',
    teacher=dict(
        type='ImageClassifier',
        backbone=dict(type='VGGSmall'),
        head=dict(
            type='LinearClsHead',
            num_classes=10,
            in_channels=512 * 4 * 4,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        )),
    student=dict(
        type='ImageClassifier',
        backbone=dict(type='VGGSmall', conv_cfg=dict(type='Adder2d', eta=0.2)),
        head=dict(
            type='BNLinearClsHead',
            num_classes=10,
            in_channels=512 * 4 * 4,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        )),
    # module names inside the classifiers; the conv/adder output of each
    distill_layers=[
        'backbone.stage1.0.conv',
        'backbone.stage2.1.conv',
        'backbone.stage3.1.conv',
    ],
    student_kernel=dict(type='LaplaceKernel', sigma='auto'),
    teacher_kernel=dict(type='GaussianKernel', sigma='auto'),
    connector='student',  # learnable 1x1 conv on the student side
    loss_mid=dict(type='KernelFeatureLoss', loss_weight=1.0),  # beta
    loss_blend=dict(type='BlendKDLoss', alpha=1.0, temperature=4.0),
)
