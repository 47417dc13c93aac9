"""What every tool does first and last: read the config with the common
options applied, set up a CPU process group, and tear it down."""
import argparse
import os.path as osp

import torch
import torch.distributed as dist
from mmengine.config import Config

from mmpkkd.utils import USAGE_EXIT, UserError, read_config


def load_config(args: argparse.Namespace) -> Config:
    """Read ``args.config`` and apply ``--cfg-options``, ``--work-dir`` and
    ``--launcher`` (see :func:`merge_common_args`).

    Raises:
        UserError: The config is missing or broken, or an option names a
            key it does not have (see :func:`~mmpkkd.utils.read_config`).
    """
    cfg = read_config(args.config, args.cfg_options)
    return merge_common_args(cfg, args.config, args.work_dir, args.launcher)


def merge_common_args(cfg: Config, config_path: str, work_dir: str = None,
                      launcher: str = 'none') -> Config:
    """Apply ``--work-dir`` and ``--launcher``; prepare CPU-only DDP.

    Without a CUDA device, ``tools/dist_train.sh CONFIG 2`` runs two CPU
    processes: the process group is created here with the ``gloo`` backend
    (MMEngine's ``init_dist`` would select a CUDA device and fail) and the
    model is wrapped in DDP without ``device_ids``, as DDP wants for CPU
    modules.
    """
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config_path))[0])
    if launcher != 'none' and not torch.cuda.is_available():
        if launcher != 'pytorch':
            raise UserError(
                f'--launcher {launcher} needs CUDA devices; without a GPU use '
                'tools/dist_train.sh (torchrun, --launcher pytorch).',
                USAGE_EXIT)
        cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
        cfg.env_cfg.dist_cfg['backend'] = 'gloo'
        if not dist.is_initialized():
            dist.init_process_group(backend='gloo')
        cfg.setdefault(
            'model_wrapper_cfg',
            dict(
                type='MMDistributedDataParallel',
                device_ids=None,
                broadcast_buffers=False,
                find_unused_parameters=cfg.get('find_unused_parameters',
                                               False)))
    return cfg


def close_distributed() -> None:
    """Tear the process group down before exit (MMEngine leaves it up).

    Without it, a gloo worker can still be running when the interpreter
    exits and abort the process ("terminate called without an active
    exception"), failing a run that had finished.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
