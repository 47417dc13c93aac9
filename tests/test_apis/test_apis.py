"""mmpkkd.apis: get_model builds in the mmpkkd scope, loads strictly (or an
int8 file against the user's config), and TensorModeWrapper traces.

The references are independent of get_model: models built directly by the
registry, checkpoints written with ``torch.save``, and the distiller's own
student.
"""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmpkkd.apis import (TensorModeWrapper, get_model, get_model_cfg,
                         is_distiller_cfg)
from mmpkkd.quantization import Int8FileError, int8_layers, save_int8
from mmpkkd.quantization import quantize_int8 as quantize_model
from mmpkkd.registry import MODELS
from mmpkkd.utils import UserError

from conftest import REPO  # noqa: E402
ANN = osp.join(REPO, 'configs/ann/ann_resnet20_1xb64-15e_digits.py')
CNN = osp.join(REPO, 'configs/cnn/cnn_resnet20_1xb64-15e_digits.py')
PKKD = osp.join(REPO, 'configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py')


def registry_build(model_cfg: dict, seed: int) -> torch.nn.Module:
    """The reference: the registry, in the mmpkkd scope, seeded."""
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmpkkd'):
        return MODELS.build(copy.deepcopy(model_cfg)).eval()


def images(n: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(
        seed))


@pytest.fixture(scope='module')
def ckpts(tmp_path_factory):
    """Checkpoints as tools/train.py writes them (``state_dict`` + meta):
    an ANN, a CNN and a PKKD distiller, random weights."""
    folder = tmp_path_factory.mktemp('ckpts')
    paths, models = {}, {}
    for name, config, seed in (('ann', ANN, 1), ('cnn', CNN, 2),
                               ('pkkd', PKKD, 3)):
        cfg = Config.fromfile(config)
        model_cfg = cfg.model.to_dict()
        model_cfg['data_preprocessor'] = cfg.data_preprocessor.to_dict()
        models[name] = registry_build(model_cfg, seed)
        paths[name] = str(folder / f'{name}.pth')
        torch.save({'state_dict': models[name].state_dict(),
                    'meta': {'cfg': cfg.pretty_text}}, paths[name])
    return paths, models


def test_builds_the_config_model_in_eval_mode():
    model = get_model(ANN)
    reference = registry_build(Config.fromfile(ANN).model.to_dict(), 0)
    assert not model.training
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()}
    # the config's data preprocessor is the model's, as in the runner
    torch.testing.assert_close(
        model.data_preprocessor.mean.flatten(),
        torch.tensor(Config.fromfile(ANN).data_preprocessor['mean']))


def test_builds_in_the_mmpkkd_scope_whatever_scope_is_current():
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = get_model(ANN)  # Adder2d and BNLinearClsHead are ours
    assert type(model.head).__name__ == 'BNLinearClsHead'


def test_checkpoint_weights_are_loaded(ckpts):
    paths, models = ckpts
    model = get_model(ANN, paths['ann'])
    x = images()
    with torch.no_grad():
        assert torch.equal(model(x, mode='tensor'),
                           models['ann'](x, mode='tensor'))


def test_mismatched_checkpoint_is_refused_naming_what_fits(ckpts):
    paths, _ = ckpts
    with pytest.raises(UserError, match='does not fit the model of') as err:
        get_model(ANN, paths['pkkd'])
    assert 'extract_student.py' in str(err.value)
    with pytest.raises(UserError, match='trained with a CNN config'):
        get_model(ANN, paths['cnn'])


def test_student_of_a_pkkd_checkpoint(ckpts):
    paths, models = ckpts
    student = get_model(PKKD, paths['pkkd'], student=True)
    assert not is_distiller_cfg(get_model_cfg(PKKD, student=True))
    x = images(seed=1)
    with torch.no_grad():
        expected = models['pkkd'].student(x, mode='tensor')
        assert torch.equal(student(x, mode='tensor'), expected)
        # the ANN config with the PKKD checkpoint gives the same network
        assert torch.equal(
            get_model(ANN, paths['pkkd'], student=True)(x, mode='tensor'),
            expected)
    # and a plain classifier checkpoint into the PKKD config's student
    ann = get_model(PKKD, paths['ann'], student=True)
    assert torch.equal(ann.head.fc.weight,
                       models['ann'].head.fc.weight)


def test_distiller_without_student_flag(ckpts):
    paths, models = ckpts
    model = get_model(PKKD, paths['pkkd'])
    assert type(model).__name__ == 'PKKDDistiller'
    assert torch.equal(model.teacher.head.fc.weight,
                       models['pkkd'].teacher.head.fc.weight)


def test_student_preprocessor_is_the_config_one():
    student_cfg = get_model_cfg(PKKD, student=True)
    assert student_cfg['data_preprocessor'] == \
        Config.fromfile(PKKD).data_preprocessor.to_dict()


def test_cfg_options_apply_and_unknown_keys_are_refused():
    model = get_model(ANN, cfg_options={'model.backbone.depth': 32})
    assert len(model.backbone.layer1) == 5  # (32 - 2) / 6 blocks
    with pytest.raises(UserError, match='Did you mean train_cfg.max_epochs'):
        get_model(ANN, cfg_options={'max_epochs': 3})


def test_a_config_object_is_not_modified():
    cfg = Config.fromfile(ANN)
    before = cfg.pretty_text
    get_model(cfg, cfg_options={'model.backbone.depth': 32})
    assert cfg.pretty_text == before


def test_missing_config_and_checkpoint():
    with pytest.raises(UserError, match='did you mean'):
        get_model(ANN.replace('digits', 'digit'))
    from mmpkkd.engine import CheckpointError
    with pytest.raises(CheckpointError, match='does not exist'):
        get_model(ANN, osp.join(REPO, 'no_such.pth'))


@pytest.fixture(scope='module')
def int8_file(tmp_path_factory, ckpts):
    """An int8 file made from the ANN checkpoint's weights."""
    _, models = ckpts
    qnet = quantize_model(models['ann'], [images(4, seed=5)], max_samples=4,
                          clip_levels=(1.0, ))
    path = str(tmp_path_factory.mktemp('int8') / 'ann_int8.pth')
    save_int8(qnet, path, get_model_cfg(ANN, student=True),
              meta={'config': ANN})
    return path, qnet


def test_int8_file_is_built_from_the_user_config(int8_file):
    path, qnet = int8_file
    model = get_model(ANN, path)
    assert int8_layers(model) == int8_layers(qnet)
    x = images(seed=6)
    with torch.no_grad():
        assert torch.equal(model(x, mode='tensor'), qnet(x, mode='tensor'))
    # the PKKD config stands for its student, the network of the file
    assert int8_layers(get_model(PKKD, path)) == int8_layers(qnet)


def test_int8_file_of_another_model_is_refused(int8_file):
    path, _ = int8_file
    with pytest.raises(Int8FileError, match=r'backbone\.depth: 20 vs 32'):
        get_model(ANN, path, cfg_options={'model.backbone.depth': 32})
    with pytest.raises(ValueError, match='CPU only'):
        get_model(ANN, path, device='cuda')


def test_tensor_mode_wrapper_gives_the_logits_and_traces():
    model = get_model(ANN)
    wrapped = TensorModeWrapper(model)
    x = images(3, seed=7)
    with torch.no_grad():
        logits = model(x, mode='tensor')
        assert torch.equal(wrapped(x), logits)
        assert logits.shape == (3, 10)
        exported = torch.export.export(wrapped, (x, ))
        torch.testing.assert_close(exported.module()(x), logits)
    assert dict(wrapped.named_parameters()).keys() == {
        f'model.{k}' for k, _ in model.named_parameters()}


def test_tensor_mode_wrapper_calls_a_plain_module_with_the_tensor():
    linear = torch.nn.Linear(4, 2)
    x = torch.randn(5, 4)
    assert torch.equal(TensorModeWrapper(linear)(x), linear(x))
