# AdderNet / PKKD CIFAR schedule: SGD lr 0.1, momentum 0.9, batch 256,
# cosine annealing over 400 epochs. Weight decay 5e-4 as in the original
# AdderNet CIFAR script, which produced the published ANN numbers (the PKKD
# paper quotes 1e-4 for ImageNet; override with
# --cfg-options optim_wrapper.optimizer.weight_decay=1e-4).
# AdderOptimWrapper applies AdderNet's adaptive learning rate to adder layers
# once per step, after DDP/accumulation/AMP unscaling (a plain OptimWrapper
# for networks without adder layers).
optim_wrapper = dict(
    type='AdderOptimWrapper',
    optimizer=dict(
        type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=False))
param_scheduler = dict(
    type='CosineAnnealingLR', T_max=400, by_epoch=True, eta_min=0)
train_cfg = dict(by_epoch=True, max_epochs=400, val_interval=5)
val_cfg = dict()
test_cfg = dict()
# The lr above is for a total batch of 256; --auto-scale-lr rescales it.
auto_scale_lr = dict(base_batch_size=256)
