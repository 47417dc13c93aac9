# Runtime shared by every config: scope, hooks, logging, environment.
default_scope = 'mmpkkd'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # keep the last 3 epoch checkpoints and the best one on the main metric
    checkpoint=dict(
        type='CheckpointHook', interval=1, max_keep_ckpts=3,
        save_best='auto'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False),
)

custom_hooks = [
    # restores the random generators on --resume, so it continues exactly
    dict(type='RNGStateHook'),
    # BN statistics recomputed for the current weights after every epoch,
    # before validation and checkpointing (mmpretrain's PreciseBNHook:
    # forward passes over `num_samples` training images, no backward).
    # Adder layers' outputs have a large mean and a small spread, so running
    # statistics that lag the weights shift the normalised features a lot
    # and an ANN validated on them can score near chance mid-training.
    # Cost per epoch: forward passes over min(num_samples, epoch) images,
    # about a third of a training epoch on digits, ~5% on CIFAR, <1% on
    # ImageNet.
    dict(
        type='PreciseBNHook',
        num_samples=8192,
        interval=1,
        priority='ABOVE_NORMAL'),
]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),  # tools/train.py uses gloo without GPUs
)

# Scalars go to <work_dir>/<time>/vis_data/scalars.json; tools/train.py
# --tensorboard adds a TensorboardVisBackend (tensorboard installed).
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
