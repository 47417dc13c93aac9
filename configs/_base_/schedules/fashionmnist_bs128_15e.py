# Fashion-MNIST schedule: SGD lr 0.1, momentum 0.9, weight decay 5e-4,
# batch 128, cosine over 15 epochs; validation every 5 epochs and after the
# last. A shorter budget changes both numbers, e.g.
#   --cfg-options train_cfg.max_epochs=5 param_scheduler.T_max=5
# AdderOptimWrapper applies AdderNet's adaptive learning rate to adder layers
# once per step (a plain OptimWrapper for networks without adder layers).
optim_wrapper = dict(
    type='AdderOptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(
    type='CosineAnnealingLR', T_max=15, by_epoch=True, eta_min=0)
train_cfg = dict(by_epoch=True, max_epochs=15, val_interval=5)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=128)
