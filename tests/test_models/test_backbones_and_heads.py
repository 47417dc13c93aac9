"""Backbones, heads and every config: shapes, parameter counts, one step."""
import glob
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.runner import set_random_seed

from mmpkkd.models.layers import Adder2d
from mmpkkd.registry import DATASETS, MODELS

from conftest import REPO  # noqa: E402
CONFIGS = sorted(
    osp.relpath(p, REPO)
    for p in glob.glob(osp.join(REPO, 'configs', '*', '*.py'))
    if '_base_' not in p)


pytestmark = pytest.mark.usefixtures('mmpkkd_scope')


def build(path: str) -> nn.Module:
    return MODELS.build(Config.fromfile(osp.join(REPO, path)).model)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def cifar_resnet_params(depth: int, num_classes: int, bn_head: bool) -> int:
    """Hand count of He et al.'s CIFAR ResNet with 1x1 conv+BN shortcuts."""
    n = (depth - 2) // 6
    total = 3 * 16 * 9 + 2 * 16  # stem conv + BN
    cin = 16
    for width in (16, 32, 64):
        for block in range(n):
            total += cin * width * 9 + 2 * width  # conv1 + BN
            total += width * width * 9 + 2 * width  # conv2 + BN
            if cin != width:
                total += cin * width + 2 * width  # 1x1 shortcut + BN
            cin = width
    head = 64 * num_classes + (2 * num_classes if bn_head else num_classes)
    return total + head


@pytest.mark.parametrize('depth', [20, 32, 56])
def test_cifar_resnet_parameter_counts(depth):
    cnn = build(f'configs/cnn/cnn_resnet{depth}_1xb256-400e_cifar10.py')
    ann = build(f'configs/ann/ann_resnet{depth}_1xb256-400e_cifar10.py')
    assert n_params(cnn) == cifar_resnet_params(depth, 10, bn_head=False)
    assert n_params(ann) == cifar_resnet_params(depth, 10, bn_head=True)
    if depth == 20:  # the paper's "0.27M"
        assert round(n_params(cnn) / 1e6, 2) == 0.27


def test_resnet20_shapes_and_stable_names():
    ann = build('configs/ann/ann_resnet20_1xb256-400e_cifar10.py')
    feats = ann.extract_feat(torch.randn(2, 3, 32, 32))
    assert feats[-1].shape == (2, 64)
    assert ann(torch.randn(2, 3, 32, 32), mode='tensor').shape == (2, 10)
    names = dict(ann.named_modules())
    for name in ('backbone.conv1', 'backbone.layer1.2.conv2',
                 'backbone.layer3.0.downsample.0', 'head.fc', 'head.bn'):
        assert name in names


@pytest.mark.parametrize('config,stem,head', [
    ('ann_resnet20_1xb256-400e_cifar10.py', 'backbone.conv1', 'head.fc'),
    ('ann_resnet56_1xb256-400e_cifar100.py', 'backbone.conv1', 'head.fc'),
    ('ann_vgg-small_1xb256-400e_cifar10.py', 'backbone.stem.conv', 'head.fc'),
    ('ann_resnet18_8xb32-150e_in1k.py', 'backbone.conv1', 'head.fc'),
    ('ann_resnet50_8xb32-150e_in1k.py', 'backbone.conv1', 'head.fc'),
])
def test_ann_stem_and_head_multiplicative_rest_adder(config, stem, head):
    model = build(f'configs/ann/{config}')
    convs = {
        n: m
        for n, m in model.named_modules() if isinstance(m, nn.Conv2d)
    }
    assert type(convs.pop(stem)) is nn.Conv2d
    assert isinstance(dict(model.named_modules())[head], nn.Linear)
    assert convs and all(type(m) is Adder2d for m in convs.values()), \
        [n for n, m in convs.items() if type(m) is not Adder2d]
    shortcuts = [n for n in convs if 'downsample' in n]
    if 'resnet' in config:
        assert shortcuts, 'shortcut 1x1 convs must be adder layers too'
    assert isinstance(dict(model.named_modules())['head.bn'],
                      nn.BatchNorm1d)


def test_imagenet_resnet_parameter_counts():
    # torchvision's published counts for the CNNs
    assert n_params(
        build('configs/cnn/cnn_resnet18_8xb32-150e_in1k.py')) == 11689512
    assert n_params(
        build('configs/cnn/cnn_resnet50_8xb32-150e_in1k.py')) == 25557032


def test_vgg_small_shapes_and_count():
    model = build('configs/cnn/cnn_vgg-small_1xb256-400e_cifar10.py')
    widths = [(3, 128), (128, 128), (128, 256), (256, 256), (256, 512),
              (512, 512)]
    expected = sum(i * o * 9 + 2 * o for i, o in widths) + 8192 * 10 + 10
    assert n_params(model) == expected
    out = model.backbone(torch.randn(2, 3, 32, 32))
    assert out[0].shape == (2, 512 * 4 * 4)


@pytest.mark.parametrize('name', ['resnet20_1xb256-400e_cifar10',
                                  'resnet32_1xb256-400e_cifar100',
                                  'vgg-small_1xb256-400e_cifar10',
                                  'resnet18_8xb32-150e_in1k'])
def test_ann_cnn_twins_share_parameter_names(name):
    cnn = build(f'configs/cnn/cnn_{name}.py').state_dict()
    ann = build(f'configs/ann/ann_{name}.py').state_dict()
    body = lambda sd: {k for k in sd if not k.startswith('head.')}  # noqa
    assert body(cnn) == body(ann)
    for key in body(cnn):
        assert cnn[key].shape == ann[key].shape, key


def _dataset_cfg(cfg: Config, tmp_roots: dict) -> dict:
    ds = cfg.train_dataloader.dataset.copy()
    if ds.type == 'SeededDataset':  # the wrapped data set is what we need
        ds = ds.dataset.copy()
    if ds.type == 'FashionMNIST':
        ds.update(data_root=tmp_roots['fashionmnist'], indices=None)
    elif ds.type == 'OfflineCIFAR10':
        ds.update(data_root=tmp_roots['cifar10'], verify_md5=False)
    elif ds.type == 'OfflineCIFAR100':
        ds.update(data_root=tmp_roots['cifar100'], verify_md5=False)
    elif ds.type == 'OfflineImageNet':
        ds.update(data_root=tmp_roots['imagenet'])
    return ds


@pytest.mark.parametrize('config', CONFIGS)
def test_training_steps_lower_the_loss(config, cifar10_root,
                                           cifar100_root, imagenet_root,
                                           fashion_mnist_root):
    set_random_seed(0)  # torch and the numpy of the data augmentations
    cfg = Config.fromfile(osp.join(REPO, config))
    model_cfg = cfg.model
    model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(model_cfg)
    model.init_weights()
    dataset = DATASETS.build(
        _dataset_cfg(
            cfg,
            dict(
                cifar10=cifar10_root,
                cifar100=cifar100_root,
                imagenet=imagenet_root,
                fashionmnist=fashion_mnist_root)))
    n = min(8, len(dataset))  # the tiny ImageNet has 4 images
    batch = pseudo_collate([dataset[i] for i in range(n)])
    # the config's optimizer with a 10x smaller step, for several steps: at
    # lr 0.1 the first steps from scratch on one tiny batch overshoot, and
    # AdderNet's gradients are not the true gradient (full-precision X - W,
    # clipped dX), so a single step need not descend
    cfg.optim_wrapper.optimizer.lr *= 0.1
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)

    def fit_loss() -> float:
        """Cross-entropy terms (a distiller's KD target moves each step)."""
        with torch.no_grad():
            data = model.data_preprocessor(batch, True)
            losses = model(**data, mode='loss')
        ce = [v for k, v in losses.items() if k.endswith('loss_cls')]
        return float(sum(ce) if ce else model.parse_losses(losses)[0])

    model.train()
    before = fit_loss()
    for _ in range(8):
        model.train_step(batch, optim_wrapper)
    after = fit_loss()
    assert torch.isfinite(torch.tensor(before))
    assert after < before, f'{config}: loss {before:.4f} -> {after:.4f}'


@pytest.mark.parametrize('config', [
    'configs/ann/ann_resnet20_1xb256-400e_cifar10.py',
    'configs/ann/ann_vgg-small_1xb256-400e_cifar10.py',
    'configs/ann/ann_resnet50_8xb32-150e_in1k.py',
    'configs/ann/ann_mobilenet-v2-0.5x_1xb256-400e_cifar10.py'
])
def test_adder_filters_keep_addernet_init(config):
    """N(0, 1) filters survive init_weights (Kaiming also matches Adder2d)."""
    torch.manual_seed(0)
    model = build(config)
    model.init_weights()
    weights = torch.cat([
        m.weight.detach().flatten() for m in model.modules()
        if isinstance(m, Adder2d)
    ])
    assert abs(weights.mean().item()) < 0.01
    assert weights.std().item() == pytest.approx(1.0, abs=0.01)
