# PKKD ImageNet schedule: SGD lr 0.1, momentum 0.9, weight decay 1e-4,
# cosine annealing over 150 epochs, total batch 256 (8 GPUs x 32).
# AdderOptimWrapper applies AdderNet's adaptive learning rate to adder layers
# once per step, after DDP/accumulation/AMP unscaling (a plain OptimWrapper
# for networks without adder layers).
optim_wrapper = dict(
    type='AdderOptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4))
param_scheduler = dict(
    type='CosineAnnealingLR', T_max=150, by_epoch=True, eta_min=0)
train_cfg = dict(by_epoch=True, max_epochs=150, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=256)
