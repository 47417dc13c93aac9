"""mmpkkd.utils: option keys, output paths, errors."""
import os

import pytest
from mmengine.config import Config

from mmpkkd.utils import (USAGE_EXIT, UserError, check_cfg_options,
                          check_output_path, closest_key, report_errors)

CFG = Config(
    dict(
        train_cfg=dict(max_epochs=3, val_interval=1),
        model=dict(type='ImageClassifier', backbone=dict(type='ResNet_CIFAR',
                                                         depth=20)),
        custom_hooks=[dict(type='EMAHook', momentum=0.1)],
        plain=dict(a=1)))


@pytest.mark.parametrize('key, expected', [
    ('max_epochs', 'train_cfg.max_epochs'),
    ('train_cfg.max_epoch', 'train_cfg.max_epochs'),
    ('train_cfg.val_intervall', 'train_cfg.val_interval'),
    ('modle.backbone.depth', 'model.backbone.depth'),
    ('zzzz', None),
])
def test_closest_key(key, expected):
    from mmpkkd.utils.config import flatten_keys
    assert closest_key(key, list(flatten_keys(CFG.to_dict()))) == expected


@pytest.mark.parametrize('key', [
    'train_cfg.max_epochs',  # exists
    'model.backbone.depth',  # exists
    'model.backbone.frozen_stages',  # new argument of a built component
    'custom_hooks.0.momentum',  # list index
    'randomness.seed',  # top-level entry the runner reads
    'load_from',
])
def test_keys_that_take_effect_are_accepted(key):
    check_cfg_options(CFG, {key: 1})


@pytest.mark.parametrize('key, where', [
    ('max_epochs', 'at the top level'),
    ('train_cfg.max_epoch', "under 'train_cfg'"),
    ('plain.b', "under 'plain'"),
    ('custom_hooks.3.momentum', "under 'custom_hooks'"),
    ('train_cfg.max_epochs.x', "under 'train_cfg.max_epochs'"),
])
def test_keys_that_would_be_ignored_are_refused(key, where):
    with pytest.raises(UserError, match=where) as info:
        check_cfg_options(CFG, {key: 1}, 'x.py')
    assert info.value.exit_code == USAGE_EXIT


def test_output_path_checks(tmp_path):
    src = tmp_path / 'in.pth'
    src.write_bytes(b'x')
    os.symlink(src, tmp_path / 'alias.pth')
    for out in (src, tmp_path / 'alias.pth', tmp_path / '.' / 'in.pth'):
        with pytest.raises(UserError, match='is the input file'):
            check_output_path(str(out), [str(src)])
    with pytest.raises(UserError, match='is a file'):
        check_output_path(str(src / 'x.json'))
    with pytest.raises(UserError, match='is a directory'):
        check_output_path(str(tmp_path))
    new = tmp_path / 'a' / 'b' / 'm.json'
    assert check_output_path(str(new), [str(src)]) == str(new)
    assert not (tmp_path / 'a').exists()  # nothing created by the check


def test_report_errors(capsys):
    with pytest.raises(SystemExit) as info:
        with report_errors('tool.py', debug=False):
            raise UserError('config x.py does not exist', USAGE_EXIT)
    assert info.value.code == USAGE_EXIT
    err = capsys.readouterr().err
    assert err.startswith('tool.py: error: config x.py does not exist')
    with pytest.raises(SystemExit) as info:
        with report_errors('tool.py', debug=False):
            raise KeyError('a readable message')
    assert info.value.code == 1
    assert "KeyError: a readable message" in capsys.readouterr().err
    with pytest.raises(ValueError):
        with report_errors('tool.py', debug=True):
            raise ValueError('shown with its traceback')
