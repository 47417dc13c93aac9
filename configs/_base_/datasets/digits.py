# scikit-learn's handwritten digits (shipped with the package, no download):
# fixed stratified split of 1,347 train / 450 test images, 8x8 upsampled to
# 32x32 and repeated over 3 channels for CIFAR-style networks.
dataset_type = 'Digits'
data_preprocessor = dict(
    num_classes=10, mean=[78.08] * 3, std=[82.71] * 3, to_rgb=False)

train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=2),  # digits: no flips
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]

# persistent_workers=False said explicitly: mmpretrain's tools/train.py
# defaults it to True, which a DataLoader without workers refuses
train_dataloader = dict(
    batch_size=64,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(type=dataset_type, split='train', pipeline=train_pipeline),
    # per-sample augmentation seeds from (seed, epoch, index): the same
    # with any num_workers and exact across --resume
    sampler=dict(type='SeededSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=150,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(type=dataset_type, split='test', pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
