# PKKD with a CNN ResNet-20 teacher and an adder ResNet-20 student, both
# from scratch; distils the last conv of each stage (before its BN).
# The student is the ANN model base as is; the teacher is its twin with
# multiplicative convs (conv_cfg=None) and its own head.
_base_ = ['./ann_cifar_resnet20.py']

model = dict(
    _delete_=True,
    type='PKKDDistiller',
    student=_base_.model,
    teacher=dict(
        _base_.model,
        backbone=dict(_base_.model.backbone, conv_cfg=None),
        # the teacher's classifier: 'LinearClsHead' (a plain CNN's) or
        # 'BNLinearClsHead' (the student's, BN on the logits)
        head=dict(_base_.model.head, type='LinearClsHead')),
    # module names inside the classifiers; the conv/adder output of each
    distill_layers=[
        'backbone.layer1.2.conv2',
        'backbone.layer2.2.conv2',
        'backbone.layer3.2.conv2',
    ],
    # sigma: 'auto', a float, or a list with one value per distilled layer
    student_kernel=dict(type='LaplaceKernel', sigma='auto'),
    teacher_kernel=dict(type='GaussianKernel', sigma='auto'),
    connector='student',  # 1x1 conv: 'student', 'teacher', 'both', 'none'
    connector_cfg=dict(type='ConvConnector'),
    # the paper's alpha = beta = 1 (CIFAR configs; digits and Fashion-MNIST
    # use 0.1, chosen on their val splits). With the 'mean' reduction and
    # T^2, L_mid carries ~6 % of the student's gradient at beta = 1 on the
    # Fashion-MNIST kernel scan, a scale that did not hurt there; from a
    # third of the gradient (beta = 10) it did (configs/pkkd/README.md).
    loss_mid=dict(type='KernelFeatureLoss', loss_weight=1.0,
                  reduction='mean'),  # beta; 'sum': Eq. 13 per image
    loss_blend=dict(type='BlendKDLoss', alpha=1.0, temperature=4.0,
                    t_squared=True),
)
