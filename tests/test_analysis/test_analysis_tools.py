"""Analysis and visualization tools: operation counts by hand, feature/weight and curve PNGs.

The tiny PKKD checkpoint (1 epoch on 128 digits) is trained once per module.
"""
import copy
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys
from typing import List, Optional

import matplotlib.image as mpimg
import pytest
import torch

from mmpkkd.analysis import (ENERGY_PJ, cnn_twin_cfg, count_ops, energy_pj,
                             format_markdown, networks_to_compare)
from mmpkkd.apis import get_model
from mmpkkd.models.layers import Adder2d
from mmpkkd.ops import adder2d_reference
from mmpkkd.visualization import load_curves, plot_curves, select_pairs

from conftest import REPO, tool_path  # noqa: E402
PKKD_DIGITS = 'configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py'
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
TOOLS = ('count_ops', 'visualize_features', 'plot_curves')


def load_tool(name: str):
    """Import tools/<group>/<name>.py as a module (no subprocess)."""
    path = osp.join(REPO, tool_path(f'{name}.py'))
    spec = importlib.util.spec_from_file_location(f'_tool_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_png(path: str) -> tuple:
    with open(path, 'rb') as f:
        assert f.read(8) == PNG_SIGNATURE, path
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    return image.shape


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine, more threads make
    these small forwards many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def pkkd_run(tmp_path_factory):
    """Work dir of a 1-epoch PKKD training on digits: epoch_1.pth + logs."""
    work_dir = str(tmp_path_factory.mktemp('pkkd_digits'))
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    proc = subprocess.run([
        sys.executable, 'tools/train.py', PKKD_DIGITS, '--work-dir',
        work_dir, '--cfg-options', 'train_cfg.max_epochs=1',
        'train_dataloader.dataset.indices=128',
        'val_dataloader.dataset.indices=60',
        'test_dataloader.dataset.indices=60', 'train_cfg.val_interval=1',
        'default_hooks.logger.interval=1'
    ], cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return work_dir


@pytest.fixture(scope='module')
def r20_reports():
    """Operation reports of CIFAR ResNet-20, CNN and ANN, at 32x32."""
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        networks, notes = networks_to_compare(
            'configs/ann/ann_resnet20_1xb256-400e_cifar10.py')
    finally:
        os.chdir(cwd)
    assert [n.label for n in networks] == ['CNN', 'ANN'] and not notes
    return {n.label: (n.model, count_ops(n.model, (3, 32, 32), n.label))
            for n in networks}


# ---------------------------------------------------------------- count_ops
@pytest.mark.parametrize('name', ['resnet20_1xb256-400e_cifar10',
                                  'vgg-small_1xb256-400e_cifar100',
                                  'resnet50_8xb32-150e_in1k'])
def test_cnn_twin_is_built_from_the_ann_model_config(name):
    """The derived twin is the network of the shipped CNN config."""
    from mmengine.config import Config
    ann_cfg = Config.fromfile(osp.join(REPO, f'configs/ann/ann_{name}.py'))
    cnn_cfg = Config.fromfile(osp.join(REPO, f'configs/cnn/cnn_{name}.py'))
    twin_cfg = copy.deepcopy(ann_cfg)
    twin_cfg.model = cnn_twin_cfg(ann_cfg.model)
    twin = get_model(twin_cfg)
    cnn = get_model(cnn_cfg)
    assert not any(isinstance(m, Adder2d) for m in twin.modules())
    assert [(n, type(m)) for n, m in twin.named_modules()] == \
        [(n, type(m)) for n, m in cnn.named_modules()]
    assert {k: v.shape for k, v in twin.state_dict().items()} == \
        {k: v.shape for k, v in cnn.state_dict().items()}
    assert cnn_twin_cfg(cnn_cfg.model) is None  # a CNN has no derived twin


def test_cnn_config_is_reported_alone_unless_twin_given():
    path = osp.join(REPO, 'configs/cnn/cnn_resnet20_1xb64-15e_digits.py')
    networks, notes = networks_to_compare(path)
    assert [n.label for n in networks] == ['CNN'] and '--twin' in notes[0]
    twin = osp.join(REPO, 'configs/ann/ann_resnet20_1xb64-15e_digits.py')
    networks, notes = networks_to_compare(path, twin=twin)
    assert [n.label for n in networks] == ['CNN', 'ANN'] and not notes


def test_basic_block_counted_by_hand(r20_reports):
    cnn, ann = r20_reports['CNN'][1], r20_reports['ANN'][1]
    # layer1.0.conv1: 16 -> 16 channels, 3x3, 32x32 output
    macs = 16 * 16 * 9 * 32 * 32
    c, a = cnn.layer('backbone.layer1.0.conv1'), ann.layer(
        'backbone.layer1.0.conv1')
    assert (c.op, a.op) == ('Conv2d', 'Adder2d')
    assert c.out_shape == a.out_shape == (1, 16, 32, 32)
    assert (c.mults, c.adds, c.sign_ops) == (macs, macs, 0)
    # adder: |x - w| accumulated = subtract + accumulate, abs apart
    assert (a.mults, a.adds, a.sign_ops) == (0, 2 * macs, macs)
    assert c.params == a.params == 16 * 16 * 9
    # 1x1 stride-2 shortcut adder of layer2.0: 16 -> 32 at 16x16
    down = ann.layer('backbone.layer2.0.downsample.0')
    assert (down.mults, down.adds) == (0, 2 * 32 * 16 * 16 * 16)
    # BN = 1 mult + 1 add per element, in both networks
    for report in (cnn, ann):
        bn = report.layer('backbone.layer1.0.bn1')
        assert (bn.mults, bn.adds) == (16 * 32 * 32, 16 * 32 * 32)
        # residual out += identity: 1 add per element; the block's ReLU
        # runs twice
        assert report.layer('backbone.layer1.0 [elementwise]').adds == \
            16 * 32 * 32
        relu = report.layer('backbone.layer1.0.relu')
        assert (relu.calls, relu.sign_ops) == (2, 2 * 16 * 32 * 32)


def test_totals_consistent(r20_reports):
    (cnn_model, cnn), (ann_model, ann) = r20_reports['CNN'], r20_reports[
        'ANN']
    stem = 16 * 3 * 9 * 32 * 32
    block_convs = (6 * 16 * 16 * 9 * 32 * 32 +  # layer1: 6 convs
                   (32 * 16 * 9 + 5 * 32 * 32 * 9 + 32 * 16) * 16 * 16 +
                   (64 * 32 * 9 + 5 * 64 * 64 * 9 + 64 * 32) * 8 * 8)
    fc, gap = 64 * 10, 64
    # 7 BNs per stage (6 in blocks + stem BN or shortcut BN)
    bn = 7 * (16 * 32 * 32 + 32 * 16 * 16 + 64 * 8 * 8)
    assert cnn.macs == ann.macs == stem + block_convs + fc
    assert cnn.mults == stem + block_convs + bn + fc + gap
    # ANN multiplications come only from the stem conv, the BNs (+ the
    # logit BN of its head), the classifier and the average pooling
    assert ann.mults == stem + bn + 10 + fc + gap
    assert sum(r.mults for r in ann.layers if r.op == 'Adder2d') == 0
    mult_ops = {r.op for r in ann.layers if r.mults}
    assert mult_ops == {'Conv2d', 'BatchNorm2d', 'BatchNorm1d', 'Linear',
                        'AdaptiveAvgPool2d'}
    # one more add per block MAC; the ANN's head has no fc bias (-10 adds)
    # but a logit BN (+10)
    assert ann.adds - cnn.adds == block_convs - 10 + 10
    for model, report in ((cnn_model, cnn), (ann_model, ann)):
        assert report.total_params == sum(
            p.numel() for p in model.parameters())
        assert sum(r.params for r in report.layers) == report.total_params
        assert report.uncounted == []
    assert ann.total_params - cnn.total_params == 20 - 10  # BN1d, fc bias


def test_totals_match_mmengine_flop_analyzer(r20_reports):
    from mmengine.analysis import FlopAnalyzer

    class Tensor(torch.nn.Module):

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x, mode='tensor')

    model, report = r20_reports['CNN']
    ops = FlopAnalyzer(Tensor(model), torch.randn(1, 3, 32, 32))
    ops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    by_op = ops.by_operator()  # one "flop" per MAC for conv and linear
    assert report.macs == by_op['conv'] + by_op['linear']


def test_energy_is_the_45nm_formula(r20_reports):
    assert ENERGY_PJ == {'fp32': dict(add=0.9, mult=3.7),
                         'int32': dict(add=0.1, mult=3.1),
                         'int8': dict(add=0.03, mult=0.2)}
    assert energy_pj(10, 20, 'fp32') == pytest.approx(10 * 3.7 + 20 * 0.9)
    with pytest.raises(ValueError, match='precision'):
        energy_pj(1, 1, 'fp16')
    for _, report in r20_reports.values():
        for p, cost in ENERGY_PJ.items():
            expected = report.mults * cost['mult'] + report.adds * cost['add']
            assert report.energy_pj(p) == pytest.approx(expected)
            assert sum(r.energy_pj(p) for r in report.layers) == \
                pytest.approx(expected)
    cnn, ann = r20_reports['CNN'][1], r20_reports['ANN'][1]
    assert ann.energy_pj('fp32') < cnn.energy_pj('fp32')
    text = format_markdown([cnn, ann])
    assert '| | CNN | ANN |' in text
    assert f'| multiplications | {cnn.mults:,} | {ann.mults:,} |' in text


def test_int8_energy_by_hand(r20_reports):
    """layer1.0.conv1 (2,359,296 MACs) at 45 nm int8: add 0.03 pJ, mult
    0.2 pJ (Horowitz 2014), beside fp32."""
    cnn, ann = r20_reports['CNN'][1], r20_reports['ANN'][1]
    conv = cnn.layer('backbone.layer1.0.conv1')
    adder = ann.layer('backbone.layer1.0.conv1')
    # CNN: 2,359,296 mults + 2,359,296 adds
    assert conv.energy_pj('int8') == pytest.approx(542638.08)
    # ANN: 4,718,592 adds, no mults
    assert adder.energy_pj('int8') == pytest.approx(141557.76)
    assert adder.energy_pj('fp32') == pytest.approx(4246732.8)
    text = format_markdown([cnn, ann])
    assert '| energy int8 (uJ) |' in text
    assert '| energy int8 / CNN |' in text
    header = text.split('## Per layer', 1)[1].strip().splitlines()[0]
    assert 'CNN uJ fp32 | CNN uJ int32 | CNN uJ int8' in header
    row = next(line for line in text.splitlines()
               if line.startswith('| backbone.layer1.0.conv1 |'))
    # CNN columns: ..., 0.543 uJ int8; ANN: 4.247 uJ fp32, ..., 0.142 int8
    assert row.endswith('| 0.543 | Adder2d | 0 | 4,718,592 | 2,359,296 | '
                        '2,304 | 4.247 | 0.472 | 0.142 |')


def test_count_ops_cli_pkkd_reports_teacher_and_student(tmp_path, capsys):
    out = str(tmp_path / 'ops.md')
    text = load_tool('count_ops').main(
        [osp.join(REPO, 'configs/pkkd/pkkd_resnet20_1xb256-400e_cifar10.py'),
         '--shape', '3',
         '32', '32', '--out', out])
    assert open(out).read() == text
    assert '(teacher)' in text and '(student)' in text
    assert '| | CNN | ANN |' in text
    assert '| backbone.layer1.0.conv1 | 16x32x32 | Conv2d |' in text
    assert '2 adds (subtract + accumulate) + 1 abs' in text


@torch.library.custom_op('mmpkkd_test::adder2d_renamed', mutates_args=())
def _renamed_adder2d(x: torch.Tensor, w: torch.Tensor,
                     bias: Optional[torch.Tensor],
                     padding: List[int]) -> torch.Tensor:
    """The adder op under a kind no op handle names (as a torch.library
    op would trace)."""
    return adder2d_reference(x, w, bias, 1, padding)


class _TwoAdders(torch.nn.Module):
    """A renamed adder op (no bias) + an Adder2d with a bias, summed."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(4, 3, 3, 3))
        self.layer = Adder2d(3, 4, 3, stride=1, padding=1, bias=True)

    def forward(self, x):
        return _renamed_adder2d(x, self.weight, None, [1, 1]) + self.layer(x)


def test_adder_counted_under_any_traced_name():
    report = count_ops(_TwoAdders(), (3, 5, 5))
    macs = 4 * 5 * 5 * 3 * 3 * 3  # per op: 100 outputs x 27 taps
    own, layer = report.layer('[elementwise]'), report.layer('layer')
    # renamed op: 2 adds + 1 abs per MAC; then the + of the two outputs
    assert (own.mults, own.adds, own.sign_ops) == (0, 2 * macs + 100, macs)
    # Adder2d with bias: + 1 add per output
    assert (layer.mults, layer.adds, layer.sign_ops) == (0, 2 * macs + 100,
                                                         macs)
    assert report.macs == 2 * macs and report.uncounted == []


@pytest.mark.parametrize('tool', TOOLS)
def test_help(tool):
    proc = subprocess.run(
        [sys.executable, tool_path(f'{tool}.py'),
         '--help'], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert 'usage:' in proc.stdout


# ------------------------------------------------------- visualize_features
def test_select_pairs():
    pairs = [('backbone.layer1.2.conv2', 'backbone.layer1.2.conv2'),
             ('backbone.layer3.2.conv2', 'backbone.layer3.2.conv2')]
    assert select_pairs(pairs) == pairs
    assert select_pairs(pairs, ['layer3.2.conv2']) == pairs[1:]
    with pytest.raises(ValueError, match='choose from'):
        select_pairs(pairs, ['layer2.2.conv2'])


def test_visualize_features(pkkd_run, tmp_path):
    out_dir = str(tmp_path / 'vis')
    figures = load_tool('visualize_features').main([
        osp.join(REPO, PKKD_DIGITS), osp.join(pkkd_run, 'epoch_1.pth'),
        '--out-dir', out_dir, '--num-images', '16'
    ])
    expected = [f'backbone.layer{i}.2.conv2' for i in (1, 2, 3)]
    assert list(figures.layers) == expected
    infos = list(figures.layers.values()) + [figures.weights]
    for info in infos:
        assert osp.dirname(info.path) == out_dir
        assert info.num_panels == 2  # raw + mapped / raw + standardised
        assert info.num_axes == 3  # the raw panel has a twin x axis
        assert_png(info.path)
    assert sorted(os.listdir(out_dir)) == sorted(
        [f'features_{n}.png' for n in expected] + ['weights.png'])


# -------------------------------------------------------------- plot_curves
def test_plot_curves_pkkd(pkkd_run, tmp_path):
    out = str(tmp_path / 'curves.png')
    info = load_tool('plot_curves').main([pkkd_run, '--out', out])
    assert info.num_panels == 2 and info.path == out
    assert_png(out)
    curves = load_curves(pkkd_run)
    assert curves.is_distillation
    assert set(curves.val) == {'accuracy/top1', 'teacher/accuracy/top1'}
    assert {'loss', 'teacher.loss_cls', 'student.loss_cls', 'student.loss_kd',
            'student.loss_mid'} <= set(curves.train)
    # 2 iterations in epoch 1: x = 0.5, 1.0 epochs
    assert [x for x, _ in curves.train['loss']] == [0.5, 1.0]


def test_plot_curves_classifier_and_resumed_runs(tmp_path):
    """A plain classifier log, split over two runs (a resume)."""
    for stamp, epochs in (('20240101_000000', (1, )),
                          ('20240102_000000', (2, 3))):
        folder = tmp_path / stamp / 'vis_data'
        folder.mkdir(parents=True)
        lines = []
        for epoch in epochs:
            for it in (1, 2):
                step = (epoch - 1) * 2 + it
                lines.append(dict(lr=0.1, loss=3.0 / step, epoch=epoch,
                                  iter=step, step=step))
            lines.append({'accuracy/top1': 10.0 * epoch, 'step': epoch})
        (folder / 'scalars.json').write_text(
            '\n'.join(json.dumps(line) for line in lines) + '\n')
    curves = load_curves(str(tmp_path))
    assert not curves.is_distillation and len(curves.runs) == 2
    assert set(curves.train) == {'loss'}
    assert curves.val['accuracy/top1'] == [(1, 10.0), (2, 20.0), (3, 30.0)]
    assert [x for x, _ in curves.train['loss']] == [0.5, 1, 1.5, 2, 2.5, 3]
    assert len(load_curves(str(tmp_path), latest_only=True).val[
        'accuracy/top1']) == 2
    info = plot_curves(curves, str(tmp_path / 'c.png'))
    assert info.num_panels == 2
    assert_png(info.path)
    with pytest.raises(FileNotFoundError, match='scalars.json'):
        load_curves(str(tmp_path / 'missing'))


def test_curves_tolerate_a_cut_off_last_line(tmp_path):
    """A run killed while writing leaves half a line: it is dropped; a bad
    line elsewhere is an error."""
    path = tmp_path / 'scalars.json'
    lines = [json.dumps(dict(lr=0.1, loss=2.0, epoch=1, iter=1, step=1)),
             json.dumps({'accuracy/top1': 50.0, 'step': 1})]
    path.write_text('\n'.join(lines) + '\n{"lr": 0.1, "lo')
    curves = load_curves(str(path))
    assert curves.val == {'accuracy/top1': [(1, 50.0)]}
    assert curves.train == {'loss': [(1, 2.0)]}
    path.write_text('{"lr": 0.1, "lo\n' + '\n'.join(lines) + '\n')
    with pytest.raises(ValueError, match='line 1 is not JSON'):
        load_curves(str(path))


_BACKEND_SCRIPT = r"""
import json, sys
import matplotlib
import matplotlib.pyplot as plt
from mmpkkd.visualization import Curves, plot_curves
before = matplotlib.get_backend()
curves = Curves(train={'loss': [(1, 2.0), (2, 1.0)]},
                val={'accuracy/top1': [(1, 50.0), (2, 60.0)]})
info = plot_curves(curves, sys.argv[1])
print(json.dumps({'before': before, 'after': matplotlib.get_backend(),
                  'pyplot_figures': plt.get_fignums(),
                  'panels': info.num_panels}))
"""


def test_figures_leave_the_matplotlib_backend_alone(tmp_path):
    """Drawing uses figure objects: the caller's backend (here SVG) is not
    switched and pyplot keeps no figure open."""
    out = str(tmp_path / 'c.png')
    proc = subprocess.run(
        [sys.executable, '-c', _BACKEND_SCRIPT, out], cwd=REPO,
        env=dict(os.environ, MPLBACKEND='svg', PYTHONPATH=REPO),
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {'before': 'svg', 'after': 'svg', 'pyplot_figures': [],
                      'panels': 2}
    assert_png(out)
