# PKKD with a CNN ResNet-18 teacher and an adder ResNet-18 student (ImageNet);
# distils the last conv of each stage (before its BN). The student is the ANN
# model base as is; the teacher is its twin with multiplicative convs.
_base_ = ['./ann_resnet18_imagenet.py']

model = dict(
    _delete_=True,
    type='PKKDDistiller',
    student=_base_.model,
    teacher=dict(
        _base_.model,
        backbone=dict(_base_.model.backbone, conv_cfg=None),
        # 'LinearClsHead' (a plain CNN's) or 'BNLinearClsHead' (the student's)
        head=dict(_base_.model.head, type='LinearClsHead')),
    # module names inside the classifiers; the conv/adder output of each
    distill_layers=[
        'backbone.layer1.1.conv2',
        'backbone.layer2.1.conv2',
        'backbone.layer3.1.conv2',
        'backbone.layer4.1.conv2',
    ],
    # sigma: 'auto', a float, or a list with one value per distilled layer
    student_kernel=dict(type='LaplaceKernel', sigma='auto'),
    teacher_kernel=dict(type='GaussianKernel', sigma='auto'),
    connector='student',  # 1x1 conv: 'student', 'teacher', 'both', 'none'
    connector_cfg=dict(type='ConvConnector'),
    # the paper's alpha = beta = 1; how to read and set their scale (the
    # logged student.grad_share.*): configs/pkkd/README.md
    loss_mid=dict(type='KernelFeatureLoss', loss_weight=1.0,
                  reduction='mean'),  # beta; 'sum': Eq. 13 per image
    loss_blend=dict(type='BlendKDLoss', alpha=1.0, temperature=4.0,
                    t_squared=True),
)
