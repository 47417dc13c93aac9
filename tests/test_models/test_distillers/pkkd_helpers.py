"""Shared by the PKKD tests: the digits PKKD model config and a batch."""
import copy
import os.path as osp
from typing import List, Tuple

import torch
from mmengine.config import Config
from mmpretrain.structures import DataSample

from conftest import REPO  # noqa: E402
DIGITS_PKKD = osp.join(REPO,
                       'configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py')


def pkkd_cfg(**overrides) -> dict:
    """``model`` of the digits PKKD config, with its data preprocessor."""
    cfg = Config.fromfile(DIGITS_PKKD)
    model = copy.deepcopy(cfg.model.to_dict())
    model['data_preprocessor'] = cfg.data_preprocessor.to_dict()
    model.update(overrides)
    return model


def batch(n: int = 4,
          seed: int = 0) -> Tuple[torch.Tensor, List[DataSample]]:
    """``n`` random 32x32 images with random labels of 10 classes."""
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, 3, 32, 32, generator=g)
    labels = torch.randint(0, 10, (n, ), generator=g)
    return inputs, [DataSample().set_gt_label(int(y)) for y in labels]
