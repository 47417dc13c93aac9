# Fashion-MNIST (Zalando): 28x28 grey images of 10 kinds of clothing, read
# by mmpretrain's FashionMNIST from the unpacked IDX files in `data_root`
# (prepare them once: python tools/dataset_converters/prepare_fashion_mnist.py
# -- see docs/user_guides/dataset_prepare.md).
# Splits, for choosing hyper-parameters without the test images:
#   train: the official training file's first 50,000 images (`indices`)
#   val:   its last 10,000 images (validation during training)
#   test:  the official 10,000 test images (tools/test.py, final table only)
# mmpretrain's MNIST/FashionMNIST choose the file by `test_mode`, not by
# `split`: split='test' needs test_mode=True, and the val split (from the
# training file) needs test_mode=False.
dataset_type = 'FashionMNIST'
data_root = 'data/fashion_mnist'
# mean and std of the 50,000 training images (grey, one channel)
data_preprocessor = dict(
    num_classes=10, mean=[72.80], std=[89.96], to_rgb=False)

train_pipeline = [
    dict(type='RandomCrop', crop_size=28, padding=2),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]

# the data sets are in memory and the transforms cheap: no worker processes
# (on a GPU, raise num_workers and set persistent_workers=True)
train_dataloader = dict(
    batch_size=128,
    num_workers=0,
    persistent_workers=False,
    # SeededDataset + SeededSampler: per-sample augmentation seeds from
    # (seed, epoch, index), the same with any num_workers and exact across
    # --resume. A smaller training set (a proxy budget) is
    # train_dataloader.dataset.dataset.indices=10000 (the first 10,000).
    dataset=dict(
        type='SeededDataset',
        dataset=dict(
            type=dataset_type,
            data_root=data_root,
            split='train',
            indices=50000,
            download=False,
            pipeline=train_pipeline)),
    sampler=dict(type='SeededSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=500,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        indices=-10000,  # the last 10,000 training images
        test_mode=False,
        download=False,
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = dict(
    val_dataloader,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        test_mode=True,
        download=False,
        pipeline=test_pipeline))
test_evaluator = val_evaluator
