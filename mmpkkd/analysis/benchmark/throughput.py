"""Whole-network training throughput of CNN, ANN and PKKD configs."""
from typing import Callable, Dict, Optional

import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

from mmpkkd.apis import get_model
from mmpkkd.utils import read_config

#: The three networks compared by default: the CNN, its ANN twin, and PKKD
#: training both at once (teacher + student + connectors).
DEFAULT_NETWORKS = {
    'CNN': 'configs/cnn/cnn_resnet20_1xb256-400e_cifar10.py',
    'ANN': 'configs/ann/ann_resnet20_1xb256-400e_cifar10.py',
    'PKKD': 'configs/pkkd/pkkd_resnet20_1xb256-400e_cifar10.py',
}


def make_train_step(config: str, batch: int, device: str,
                    image_size: int = 32) -> Callable[[], None]:
    """A closure that runs one optimiser step of ``config`` on a fixed batch.

    The batch is random (already-normalised) images with random labels: the
    data pipeline is not part of what is measured.

    Example:
        >>> step = make_train_step(
        ...     'configs/ann/ann_resnet20_1xb256-400e_cifar10.py', 8, 'cpu')
        >>> step()  # forward, backward and SGD update of 8 images
    """
    cfg = read_config(config)
    # called with mode='loss' directly: the inputs are not preprocessed
    model = get_model(cfg, device=device).train()
    with DefaultScope.overwrite_default_scope('mmpkkd'):  # our wrappers
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
    num_classes = cfg.data_preprocessor.num_classes
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(batch, 3, image_size, image_size, generator=g)
    labels = torch.randint(0, num_classes, (batch, ), generator=g)
    data = dict(
        inputs=inputs.to(device),
        data_samples=[DataSample().set_gt_label(int(y)) for y in labels])
    for sample in data['data_samples']:
        sample.gt_label = sample.gt_label.to(device)

    def step() -> None:
        losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
        optim.update_params(loss)

    return step


def measure_throughput(config: str,
                       batch: int = 64,
                       device: str = 'cpu',
                       repeat: int = 5) -> Dict[str, Optional[float]]:
    """Training images/s of ``config``, timed by
    :class:`torch.utils.benchmark.Timer`: the mean of ``repeat`` steps
    after its two warm-up steps, with the current number of threads.

    Returns:
        dict: ``images_per_s``, ``step_s`` and ``peak_mem_mb`` (CUDA only;
        None on CPU, where the caller measures the process instead).

    Example:
        >>> sorted(measure_throughput(
        ...     'configs/cnn/cnn_resnet20_1xb256-400e_cifar10.py', 8))
        ['images_per_s', 'peak_mem_mb', 'step_s']
    """
    step = make_train_step(config, batch, device)
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    # (imported here: importing torch.utils.benchmark prints a CUDA
    # notice on machines without CUDA)
    from torch.utils.benchmark import Timer
    timer = Timer(stmt='step()', globals=dict(step=step),
                  num_threads=torch.get_num_threads())
    step_s = timer.timeit(repeat).mean  # syncs CUDA around the steps
    peak = (torch.cuda.max_memory_allocated() / 2**20
            if device == 'cuda' else None)
    return dict(images_per_s=batch / step_s, step_s=step_s, peak_mem_mb=peak)
