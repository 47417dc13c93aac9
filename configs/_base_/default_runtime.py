# Runtime shared by every config: scope, hooks, logging, environment.
default_scope = 'mmpkkd'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # keep the last 3 epoch checkpoints and the best one on the main metric;
    # every file is written atomically (temporary file, fsync, rename), and
    # last_checkpoint / the previous best change only once the new file is
    # complete, so a killed run always resumes from a complete checkpoint
    checkpoint=dict(
        type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3,
        save_best='auto'),
    # stop at the first NaN/Inf loss (same iteration, no extra device sync)
    # and never save NaN/Inf weights; opt out of the loss check with
    # default_hooks.finite_loss.check_loss=False (see FiniteLossHook for
    # how it meets AMP's loss scaler)
    finite_loss=dict(type='FiniteLossHook'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False),
)

custom_hooks = [
    # each student loss term's share of the gradient on the student's
    # weights (student.grad_share.cls/.kd/.mid) at the first iteration and
    # then at the log interval, but at most every `min_interval` iterations
    # (each measurement costs about one iteration); distillers only, a
    # plain classifier is left alone
    dict(type='GradShareHook', interval=None, min_interval=50),
    # restores the random generators on --resume, so it continues exactly
    dict(type='RNGStateHook'),
    # BN statistics recomputed for the current weights after every epoch,
    # before validation and checkpointing (mmpretrain's PreciseBNHook:
    # forward passes over `num_samples` training images, no backward).
    # Adder layers' outputs have a large mean and a small spread, so running
    # statistics that lag the weights shift the normalised features a lot
    # and an ANN validated on them can score near chance mid-training.
    # 2,048 images (16 batches of 128) pin each channel's mean and variance
    # over 2,048 x H x W positions, far below the BN noise of a training
    # batch. Cost per epoch: forward passes over min(num_samples, epoch)
    # images: a third of a training epoch on digits (1,347 images), ~7 % of
    # one on 10,000 images, 1-2 % on CIFAR, <0.1 % on ImageNet.
    dict(
        type='PreciseBNHook',
        num_samples=2048,
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
