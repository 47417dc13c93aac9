# Short schedule for the embedded digits data (minutes on 2 CPU cores):
# SGD lr 0.1, momentum 0.9, weight decay 5e-4, batch 64, cosine over 15
# epochs.
# AdderOptimWrapper applies AdderNet's adaptive learning rate to adder layers
# once per step, after DDP/accumulation/AMP unscaling (a plain OptimWrapper
# for networks without adder layers).
optim_wrapper = dict(
    type='AdderOptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(
    type='CosineAnnealingLR', T_max=15, by_epoch=True, eta_min=0)
train_cfg = dict(by_epoch=True, max_epochs=15, val_interval=5)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=64)
