"""Config adjustments shared by ``tools/train.py`` and ``tools/test.py``."""
import os
import os.path as osp

import torch
from mmengine.config import Config


def merge_common_args(cfg: Config, config_path: str, work_dir: str = None,
                      launcher: str = 'none') -> Config:
    """Apply ``--work-dir`` and ``--launcher`` and pick the dist backend.

    Without a CUDA device the distributed backend becomes ``gloo``, so
    ``tools/dist_train.sh CONFIG 2`` runs two CPU processes.
    """
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config_path))[0])
    if not torch.cuda.is_available():
        cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
        cfg.env_cfg.dist_cfg['backend'] = 'gloo'
    os.environ.setdefault('LOCAL_RANK', '0')
    return cfg
