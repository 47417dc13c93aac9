"""Every tool, run as a user runs it, on the inputs a user gets wrong.

Each case runs the real command in a subprocess and checks three things:
the exit status (2: the command line is wrong, 1: an input cannot be
used), a short message that names the problem and what to do, without a
traceback, and that no file was lost, changed or created.
"""
import hashlib
import os
import os.path as osp
import re
import subprocess
import sys
from contextlib import contextmanager
from typing import Dict, Iterator, Tuple

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmpkkd.apis import get_model, get_model_cfg
from mmpkkd.quantization import quantize_int8, save_int8
from mmpkkd.quantization.serialization import (checksum, read_int8_dict,
                                               write_int8_dict)
from mmpkkd.registry import MODELS

from conftest import REPO, tool_path  # noqa: E402
ANN = 'configs/ann/ann_resnet20_1xb64-15e_digits.py'
CNN = 'configs/cnn/cnn_resnet20_1xb64-15e_digits.py'
PKKD = 'configs/pkkd/pkkd_resnet20_1xb64-15e_digits.py'


def run(*args, env=None, timeout=300) -> subprocess.CompletedProcess:
    """A tool's command line, from the repository root."""
    full_env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    full_env.pop('MMPKKD_DEBUG', None)
    full_env.update(env or {})
    cmd = list(args)
    if cmd[0].endswith('.py'):
        cmd.insert(0, sys.executable)
    return subprocess.run(cmd, cwd=REPO, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


def snapshot(root: str) -> Dict[str, Tuple[int, str]]:
    """``{path: (size, sha1)}`` of every file below ``root``, and the
    folders (size -1)."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            out[osp.join(folder, name)] = (-1, '')
        for name in files:
            path = osp.join(folder, name)
            with open(path, 'rb') as f:
                out[path] = (os.path.getsize(path),
                             hashlib.sha1(f.read()).hexdigest())
    return out


def assert_refused(proc: subprocess.CompletedProcess, code: int,
                   *needles: str) -> str:
    """Exit ``code``, no traceback, every needle in the message."""
    output = proc.stdout + proc.stderr
    assert proc.returncode == code, output[-3000:]
    assert 'Traceback' not in output, output[-3000:]
    for needle in needles:
        assert needle in output, f'{needle!r} not in:\n{output[-3000:]}'
    return output


def build(config: str):
    cfg = Config.fromfile(osp.join(REPO, config))
    model_cfg = cfg.model.to_dict()
    model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    with DefaultScope.overwrite_default_scope('mmpkkd'):
        return MODELS.build(model_cfg), cfg


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """Untrained checkpoints of the three digits configs (with the config
    text MMEngine stores in their meta) and an int8 file of the ANN."""
    root = tmp_path_factory.mktemp('inputs')
    out = {}
    torch.manual_seed(0)
    for name, config in (('ann', ANN), ('cnn', CNN), ('pkkd', PKKD)):
        model, cfg = build(config)
        out[name] = str(root / f'{name}.pth')
        torch.save({'state_dict': model.state_dict(),
                    'meta': {'cfg': cfg.pretty_text}}, out[name])
    net = get_model(osp.join(REPO, ANN))
    qnet = quantize_int8(net, [torch.randn(4, 3, 32, 32)], max_samples=4,
                         clip_levels=(1.0, ))
    out['int8'] = str(root / 'ann_int8.pth')
    save_int8(qnet, out['int8'], get_model_cfg(osp.join(REPO, ANN)),
              meta={'config': ANN})
    return out


class Guard:
    """The test's folder plus a check that neither it nor the shared
    inputs change: ``guard / 'x'`` is a path in the folder, and
    :meth:`freeze` records the state the command must leave untouched."""

    def __init__(self, root, inputs: str):
        self.root, self.inputs = root, inputs
        self.freeze()

    def __truediv__(self, name):
        return self.root / name

    def __str__(self):
        return str(self.root)

    def freeze(self) -> None:
        self.before = snapshot(str(self.root)), snapshot(self.inputs)

    def check(self) -> None:
        after = snapshot(str(self.root)), snapshot(self.inputs)
        assert after == self.before


@pytest.fixture
def guard(tmp_path, files):
    """Nothing in the test's folder or the inputs is lost or created."""
    guard = Guard(tmp_path, osp.dirname(files['ann']))
    yield guard
    guard.check()


# ----------------------------------------------------------------- configs


def test_missing_config_names_the_closest(guard):
    typo = ANN.replace('digits', 'digit')
    proc = run('tools/train.py', typo, '--work-dir', str(guard / 'w'))
    assert_refused(proc, 2, f'{osp.basename(typo)} does not exist',
                   f'did you mean {ANN}')


def test_config_with_syntax_error_names_file_and_line(guard, files):
    own, top, base = guard / 'own.py', guard / 'top.py', guard / 'base.py'
    own.write_text("x = 1\nmodel = dict(type='X'\n")
    top.write_text("_base_ = ['base.py']\nx = 1\n")
    base.write_text("x = 1\ny = 2\nmodel = dict(type=\n")
    guard.freeze()
    proc = run('tools/test.py', str(own), files['ann'])
    assert_refused(proc, 1, f'config {own}, line 2 has a syntax error')
    proc = run('tools/train.py', str(top), '--work-dir', str(guard / 'w'))
    assert_refused(proc, 1, f'config {base}, line 3 has a syntax error')


def test_unknown_cfg_option_suggests_the_key(guard):
    proc = run('tools/train.py', ANN, '--work-dir', str(guard / 'w'),
               '--cfg-options', 'max_epochs=1')
    assert_refused(proc, 2, "no key 'max_epochs' at the top level",
                   'Did you mean train_cfg.max_epochs?')
    proc = run('tools/train.py', ANN, '--work-dir', str(guard / 'w'),
               '--cfg-options', 'train_cfg.max_epoch=1')
    assert_refused(proc, 2, "under 'train_cfg'",
                   'Did you mean train_cfg.max_epochs?')


def test_unknown_cfg_option_in_test_and_export(guard, files):
    proc = run('tools/test.py', ANN, files['ann'], '--cfg-options',
               'test_dataloader.batchsize=8')
    assert_refused(proc, 2, 'test_dataloader.batch_size')
    proc = run('tools/deployment/export_onnx.py', ANN, files['ann'],
               '--out', str(guard / 'x.onnx'), '--cfg-options',
               'data_preprocessor.nmean=1')
    assert_refused(proc, 2, 'data_preprocessor.mean')


# --------------------------------------------------------------- train.py


def test_work_dir_with_checkpoints_is_not_reused(guard):
    work = guard / 'run'
    work.mkdir()
    (work / 'epoch_3.pth').write_bytes(b'weights of a week')
    (work / 'best_accuracy_top1_epoch_2.pth').write_bytes(b'best')
    (work / 'last_checkpoint').write_text(str(work / 'epoch_3.pth'))
    guard.freeze()
    proc = run('tools/train.py', ANN, '--work-dir', str(work))
    assert_refused(proc, 2, 'holds the checkpoints of an earlier run',
                   'epoch_3.pth', '--resume', '--overwrite')


def test_resume_with_nothing_to_resume_says_so(guard):
    proc = run('tools/train.py', ANN, '--work-dir', str(guard / 'new'),
               '--resume')
    assert_refused(proc, 2, 'nothing to resume', 'without --resume')
    proc = run('tools/train.py', ANN, '--work-dir', str(guard / 'new'),
               '--resume', str(guard / 'epoch_9.pth'))
    assert_refused(proc, 2, 'epoch_9.pth: no such checkpoint')
    proc = run('tools/train.py', ANN, '--work-dir', str(guard / 'new'),
               '--resume', '--overwrite')
    assert_refused(proc, 2, 'contradict')


def test_amp_without_cuda_is_a_usage_error(guard):
    if torch.cuda.is_available():
        pytest.skip('CUDA present: --amp is valid here')
    proc = run('tools/train.py', ANN, '--work-dir', str(guard / 'w'),
               '--amp')
    assert_refused(proc, 2, '--amp needs a CUDA device')


# ---------------------------------------------------------------- test.py


def test_pkkd_checkpoint_with_ann_config_points_to_extract_student(
        guard, files):
    proc = run('tools/test.py', ANN, files['pkkd'], '--out',
               str(guard / 'new' / 'metrics.json'))
    out = assert_refused(proc, 1, 'does not fit the model of',
                         'missing in the checkpoint: backbone.',
                         'not in the model: teacher.',
                         'tools/model_converters/extract_student.py')
    assert 'System environment' not in out  # refused before the runner


def test_cnn_checkpoint_with_ann_config_is_refused(guard, files):
    proc = run('tools/test.py', ANN, files['cnn'])
    assert_refused(proc, 1, 'does not fit', 'head.',
                   'trained with a CNN config')


def test_plain_checkpoint_with_pkkd_config_is_refused(guard, files):
    proc = run('tools/test.py', PKKD, files['ann'])
    assert_refused(proc, 1, 'holds one network (trained as ANN)')


def test_missing_checkpoint_names_the_closest(guard, files):
    proc = run('tools/test.py', ANN, files['ann'][:-4] + '.pt')
    assert_refused(proc, 2, 'does not exist', 'did you mean')


def test_out_paths_are_checked_before_the_work(guard, files):
    (guard / 'a_file').write_text('x')
    guard.freeze()
    proc = run('tools/test.py', ANN, files['ann'], '--out',
               str(guard / 'a_file' / 'm.json'))
    out = assert_refused(proc, 2, 'is a file')
    assert 'System environment' not in out
    proc = run('tools/test.py', ANN, files['ann'], '--out', files['ann'])
    assert_refused(proc, 2, 'is the input file')
    proc = run('tools/test.py', ANN, files['ann'], '--out', str(guard))
    assert_refused(proc, 2, 'is a directory')


def test_pickle_payload_is_refused_without_torch_advice(guard):
    marker = guard / 'ran'

    class Payload:
        def __reduce__(self):
            return (os.system, (f'touch {marker}', ))

    evil = guard / 'evil.pth'
    torch.save({'state_dict': {}, 'x': Payload()}, str(evil))
    guard.freeze()
    proc = run('tools/test.py', ANN, str(evil))
    out = assert_refused(proc, 1, 'Refused to load checkpoint')
    assert 'weights_only=False' not in out and 'will likely succeed' \
        not in out
    assert not marker.exists()


def test_truncated_checkpoint(guard, files):
    cut = guard / 'cut.pth'
    with open(files['ann'], 'rb') as f:
        cut.write_bytes(f.read()[:5000])
    guard.freeze()
    proc = run('tools/test.py', ANN, str(cut))
    assert_refused(proc, 1, 'truncated or corrupt')


# -------------------------------------------------------------- int8 files


def crafted_int8(src: str, dst: str, edit, rehash: bool = True) -> str:
    data = read_int8_dict(src)
    edit(data)
    if rehash:
        data['sha256'] = checksum(data)
    write_int8_dict(data, dst)
    return dst


@pytest.mark.parametrize('where', ['top', 'nested'])
def test_int8_file_with_os_system_runs_nothing(guard, files, where):
    marker = guard / 'ran'
    command = {'type': 'os.system', 'command': f'touch {marker}'}

    def edit(data):
        if where == 'top':
            data['model_cfg'] = command
        else:
            data['model_cfg']['head']['loss'] = command

    evil = crafted_int8(files['int8'], str(guard / 'evil.pth'), edit)
    guard.freeze()
    proc = run('tools/test.py', ANN, evil)
    assert_refused(proc, 1, 'int8 files hold a classifier' if where == 'top'
                   else "'os.system' is not a registered model part")
    assert not marker.exists()


def test_int8_file_of_another_model_is_refused(guard, files):
    proc = run('tools/test.py', ANN, files['int8'], '--cfg-options',
               'model.backbone.depth=32')
    assert_refused(proc, 1, 'holds another model than the config',
                   'backbone.depth: 20 vs 32', f'made from {ANN}')


def test_int8_file_with_a_flipped_bit_is_refused(guard, files):
    def edit(data):
        name = next(k for k in data['state_dict'] if 'weight_int8' in k)
        data['state_dict'][name].view(-1)[0] ^= 1

    flipped = crafted_int8(files['int8'], str(guard / 'flip.pth'), edit,
                           rehash=False)
    guard.freeze()
    proc = run('tools/test.py', ANN, flipped)
    assert_refused(proc, 1, 'checksum mismatch')


# ------------------------------------------------------ converters, export


def test_extract_student_never_writes_onto_its_input(guard, files):
    proc = run('tools/model_converters/extract_student.py', files['pkkd'],
               files['pkkd'])
    assert_refused(proc, 2, 'is the input file')
    link = guard / 'link.pth'
    os.symlink(files['pkkd'], link)
    guard.freeze()
    proc = run('tools/model_converters/extract_student.py', files['pkkd'],
               str(link))
    assert_refused(proc, 2, 'is the input file')


def test_extract_student_of_a_plain_checkpoint(guard, files):
    proc = run('tools/model_converters/extract_student.py', files['ann'],
               str(guard / 'student.pth'))
    assert_refused(proc, 1, 'not a PKKD checkpoint')


def test_export_and_quantize_check_their_output_first(guard, files):
    (guard / 'a_file').write_text('x')
    guard.freeze()
    proc = run('tools/deployment/export_onnx.py', ANN, files['ann'],
               '--out', str(guard / 'a_file' / 'net.onnx'))
    assert_refused(proc, 2, 'is a file')
    proc = run('tools/deployment/quantize_int8.py', ANN, files['ann'],
               '--out', files['ann'])
    assert_refused(proc, 2, 'is the input file')
    proc = run('tools/deployment/quantize_int8.py', ANN, files['ann'],
               '--out', str(guard / 'q.pth'), '--calib-batches', '0')
    assert_refused(proc, 2, '--calib-batches must be at least 1')


def test_count_ops_with_missing_twin(guard):
    proc = run('tools/analysis_tools/count_ops.py', ANN, '--twin', 'missing.py')
    assert_refused(proc, 2, 'missing.py does not exist')


#: (tool, arguments, what its error line says); ``{tmp}``: the test folder
ANALYSIS_BAD_INPUTS = [
    ('benchmark_compile.py', [ANN.replace('digits', 'digit')],
     f'did you mean {ANN}'),
    ('benchmark_int8.py', ['--int8-file', '{tmp}/none.pth'],
     '{tmp}/none.pth does not exist'),
    ('teacher_head_stats.py', [PKKD, '{tmp}/none.pth'],
     'checkpoint file {tmp}/none.pth does not exist'),
    ('compare_sweeps.py', ['a={tmp}/none', 'b={tmp}/none'],
     '{tmp}/none/runs.csv does not exist'),
    # no input file: an option that matches nothing, an output below a file
    ('benchmark_adder.py', ['--layers', 'no_such_layer'],
     '--layers no_such_layer matches no layer'),
    ('benchmark_gpu.py', ['--layers', 'no_such_layer'],
     '--layers no_such_layer matches no layer'),
    ('benchmark_network.py', ['--json', '{tmp}/a_file/r.json'],
     '{tmp}/a_file is a file'),
    ('gpu_check.py', ['--out', '{tmp}/a_file/check'],
     '{tmp}/a_file is a file'),
]


@pytest.mark.parametrize('tool, args, named', ANALYSIS_BAD_INPUTS,
                         ids=[case[0] for case in ANALYSIS_BAD_INPUTS])
def test_analysis_tool_bad_input_is_one_line(tmp_path, tool, args, named):
    """A missing input (or an option that cannot work) is refused before
    any work with one error line naming it."""
    (tmp_path / 'a_file').write_text('x')
    before = snapshot(str(tmp_path))
    args = [a.format(tmp=tmp_path) for a in args]
    proc = run(tool_path(tool), *args)
    assert_refused(proc, 2)
    errors = [line for line in proc.stderr.splitlines()
              if line.startswith(f'{tool}: error: ')]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert named.format(tmp=tmp_path) in errors[0], errors[0]
    assert snapshot(str(tmp_path)) == before


def test_analysis_tool_debug_shows_the_traceback(tmp_path):
    proc = run('tools/analysis_tools/teacher_head_stats.py', PKKD,
               str(tmp_path / 'none.pth'), '--debug')
    assert proc.returncode != 0
    assert 'Traceback' in proc.stderr and 'UserError' in proc.stderr


# ----------------------------------------------------- scripts, --debug


@pytest.mark.parametrize('script, args', [
    ('tools/dist_train.sh', []),
    ('tools/dist_train.sh', [ANN]),
    ('tools/dist_test.sh', [ANN, 'x.pth']),
    ('tools/slurm_train.sh', ['partition', 'job']),
])
def test_shell_scripts_print_usage(guard, script, args):
    proc = run('bash', script, *args)
    assert_refused(proc, 2, 'usage: bash ' + script)


def test_shell_scripts_check_numbers_and_files(guard):
    proc = run('bash', 'tools/dist_train.sh', ANN, 'two')
    assert_refused(proc, 2, "NPROC must be a positive number")
    proc = run('bash', 'tools/dist_train.sh', 'nofile.py', '2')
    assert_refused(proc, 2, "config file 'nofile.py' does not exist")


def test_debug_flag_and_env_show_the_traceback(guard):
    for extra, env in ((['--debug'], None), ([], {'MMPKKD_DEBUG': '1'})):
        proc = run('tools/train.py', ANN, '--work-dir', str(guard / 'w'),
                   '--cfg-options', 'max_epochs=1', *extra, env=env)
        assert proc.returncode != 0
        assert 'Traceback' in proc.stderr and 'UserError' in proc.stderr


@pytest.mark.parametrize('tool', [
    'tools/train.py', 'tools/test.py', 'tools/run_demo.py',
    'tools/model_converters/extract_student.py',
    'tools/deployment/export_onnx.py', 'tools/deployment/quantize_int8.py',
    'tools/analysis_tools/count_ops.py', 'tools/visualization/plot_curves.py',
    'tools/visualization/visualize_features.py',
    'tools/analysis_tools/compare_sweeps.py', 'tools/benchmarks/gpu_check.py'
])
def test_help_imports_no_torch(tool):
    probe = (
        'import runpy, sys\n'
        f'sys.argv = [{tool!r}, "--help"]\n'
        'try:\n'
        f'    runpy.run_path({tool!r}, run_name="__main__")\n'
        'except SystemExit as e:\n'
        '    assert e.code == 0, e.code\n'
        'print("HEAVY", sorted(m for m in ("torch", "mmpkkd", "mmpretrain")'
        ' if m in sys.modules))\n')
    proc = run(sys.executable, '-c', probe)
    assert proc.returncode == 0, proc.stderr
    assert 'usage:' in proc.stdout
    assert 'HEAVY []' in proc.stdout, proc.stdout[-500:]


# ------------------------------------------------------- a real training


def test_overwrite_starts_again_quietly_with_progress(tmp_path):
    """--overwrite deletes the old run's checkpoints; a 10-iteration epoch
    logs every iteration (the config says 50); no FileClient notices, and
    no GPU count on a CPU."""
    work = tmp_path / 'run'
    work.mkdir()
    (work / 'epoch_9.pth').write_bytes(b'old')
    (work / 'last_checkpoint').write_text(str(work / 'epoch_9.pth'))
    proc = run('tools/train.py', ANN, '--work-dir', str(work),
               '--overwrite', '--cfg-options', 'train_cfg.max_epochs=1',
               'train_dataloader.dataset.indices=640',
               'val_dataloader.dataset.indices=60',
               'test_dataloader.dataset.indices=60',
               'custom_hooks.2.num_samples=64', timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert sorted(p for p in os.listdir(work) if p.endswith('.pth')) == [
        'best_accuracy_top1_epoch_1.pth', 'epoch_1.pth']
    steps = re.findall(r'Epoch\(train\)\s+\[1\]\[\s*(\d+)/10\]', log)
    assert steps == [str(i) for i in range(1, 11)], steps
    assert 'FileClient' not in log and 'HardDiskBackend' not in log
    if not torch.cuda.is_available():
        assert 'GPU number' not in log and 'processes: 1 (CPU)' in log


# ----------------------------------------------- data, configs, devices


@contextmanager
def saved_as_on(device: str) -> Iterator[None]:
    """``torch.save`` records CPU tensors as being on ``device``, as a
    checkpoint saved there records them."""
    registry = torch.serialization._package_registry
    entry = (0, lambda storage: device
             if storage.device.type == 'cpu' else None, lambda obj, loc: None)
    registry.insert(0, entry)
    try:
        yield
    finally:
        registry.remove(entry)


def one_error_line(proc: subprocess.CompletedProcess, tool: str) -> str:
    """The tool's single ``<tool>: error:`` line."""
    errors = [line for line in proc.stderr.splitlines()
              if line.startswith(f'{tool}: error: ')]
    assert len(errors) == 1, proc.stderr[-3000:]
    return errors[0]


def test_truncated_fashion_mnist_file_is_named(guard):
    from conftest import write_fashion_mnist
    root = write_fashion_mnist(str(guard / 'fmnist'))
    images = osp.join(root, 'train-images-idx3-ubyte')
    with open(images, 'r+b') as f:
        f.truncate(osp.getsize(images) - 100)
    guard.freeze()
    proc = run('tools/train.py',
               'configs/cnn/cnn_resnet20_1xb128-15e_fashionmnist.py',
               '--work-dir', str(guard / 'w'), '--cfg-options',
               f'train_dataloader.dataset.dataset.data_root={root}',
               f'val_dataloader.dataset.data_root={root}')
    assert_refused(proc, 2)
    line = one_error_line(proc, 'train.py')
    assert f'{images} is truncated' in line, line
    assert 'prepare_fashion_mnist.py' in line
    guard.freeze()  # the run's log folder; no checkpoint
    assert not any(n.endswith('.pth') for n in os.listdir(guard / 'w'))


def test_truncated_cifar_batch_is_named(guard):
    from conftest import write_cifar
    root = write_cifar(str(guard / 'cifar'), 10)
    batch = osp.join(root, 'cifar-10-batches-py', 'data_batch_1')
    with open(batch, 'r+b') as f:
        f.truncate(osp.getsize(batch) // 2)
    guard.freeze()
    proc = run('tools/train.py',
               'configs/cnn/cnn_resnet20_1xb256-400e_cifar10.py',
               '--work-dir', str(guard / 'w'), '--cfg-options',
               f'train_dataloader.dataset.data_root={root}',
               'train_dataloader.dataset.verify_md5=False',
               f'val_dataloader.dataset.data_root={root}',
               'val_dataloader.dataset.verify_md5=False')
    assert_refused(proc, 2)
    line = one_error_line(proc, 'train.py')
    assert f'{batch} is truncated or corrupt' in line, line
    guard.freeze()


def test_distill_layer_of_one_network_only(guard):
    proc = run('tools/train.py', PKKD, '--work-dir', str(guard / 'w'),
               '--cfg-options', 'model.teacher.backbone.depth=32',
               'model.distill_layers=[backbone.layer3.4.conv1]')
    assert_refused(proc, 2)
    line = one_error_line(proc, 'train.py')
    assert ("'backbone.layer3.4.conv1' is a layer of the teacher but not "
            'of the student') in line, line
    assert "dict(student='...', teacher='...')" in line
    guard.freeze()


def test_cfg_option_of_the_wrong_type(guard):
    proc = run('tools/train.py', ANN, '--work-dir', str(guard / 'w'),
               '--cfg-options', 'train_cfg.max_epochs=abc')
    out = assert_refused(proc, 2, "train_cfg.max_epochs='abc'",
                         'a number is expected, not text', 'has 15')
    assert 'System environment' not in out  # refused before the runner


@pytest.mark.parametrize('option, value, expected', [
    ('optim_wrapper.optimizer.lr', 'fast', 'a number is expected'),
    ('randomness.deterministic', 1, 'True or False is expected'),
    ('model.backbone', 'resnet', 'it is a section of the config'),
    ('train_cfg.max_epochs', [1, 2], 'a number is expected'),
    ('optim_wrapper.optimizer.lr', 1, None),  # an int for a float is fine
    ('load_from', 'x.pth', None),  # None in the config: anything goes
    ('model.backbone.conv_cfg', None, None),  # None switches a part off
    ('test_dataloader.dataset.indices', 30, None),
])
def test_cfg_option_types(option, value, expected):
    from mmpkkd.utils import UserError, read_config
    if expected is None:
        read_config(osp.join(REPO, ANN), {option: value})
        return
    with pytest.raises(UserError, match=expected) as err:
        read_config(osp.join(REPO, ANN), {option: value})
    assert err.value.exit_code == 2


def test_gpu_checkpoint_is_tested_on_the_cpu(guard, files):
    """A checkpoint whose tensors were saved on cuda:0 evaluates on a
    machine without a GPU (and on one with: mapped to the CPU first)."""
    state = torch.load(files['ann'], weights_only=False)
    gpu = guard / 'gpu.pth'
    with saved_as_on('cuda:0'):
        torch.save(state, str(gpu))
    guard.freeze()
    proc = run('tools/test.py', ANN, str(gpu), '--work-dir',
               str(guard / 't'), '--cfg-options',
               'test_dataloader.dataset.indices=30')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'accuracy/top1' in proc.stdout + proc.stderr
    guard.freeze()


# ----------------------------------------------------- remote checkpoints


def test_url_checkpoint_payload_runs_in_no_tool(guard, files):
    """A pickle payload cached under a URL's file name: tools/test.py,
    load_from of tools/train.py and extract_student.py refuse it."""
    url = 'https://example.invalid/models/ann_r20-0123abcd.pth'
    cache = guard / 'torch' / 'hub' / 'checkpoints'
    cache.mkdir(parents=True)
    marker = guard / 'ran'

    class Payload:
        def __reduce__(self):
            return (os.system, (f'touch {marker}', ))

    torch.save({'state_dict': {}, 'x': Payload()},
               str(cache / 'ann_r20-0123abcd.pth'))
    guard.freeze()
    env = {'TORCH_HOME': str(guard / 'torch')}
    proc = run('tools/test.py', ANN, url, '--work-dir', str(guard / 't'),
               env=env)
    assert 'Refused to load' in one_error_line(proc, 'test.py')
    assert proc.returncode == 1
    proc = run('tools/model_converters/extract_student.py', url,
               str(guard / 'student.pth'), env=env)
    assert 'Refused to load' in one_error_line(proc,
                                               'extract_student.py')
    proc = run('tools/train.py', ANN, '--work-dir', str(guard / 'w'),
               '--cfg-options', f'load_from={url}', env=env)
    assert 'Refused to load' in one_error_line(proc, 'train.py')
    assert proc.returncode == 1
    proc = run('tools/train.py', ANN, '--work-dir', str(guard / 'r'),
               '--resume', url, env=env)
    assert 'Refused to load' in one_error_line(proc, 'train.py')
    assert proc.returncode == 1
    assert not marker.exists()
    guard.freeze()  # train.py made its work dirs; nothing else


def test_url_checkpoint_in_the_cache_is_tested(guard, files):
    url = 'https://example.invalid/models/ann_r20-0123abcd.pth'
    cache = guard / 'torch' / 'hub' / 'checkpoints'
    cache.mkdir(parents=True)
    with open(files['ann'], 'rb') as src:
        (cache / 'ann_r20-0123abcd.pth').write_bytes(src.read())
    guard.freeze()
    proc = run('tools/test.py', ANN, url, '--work-dir', str(guard / 't'),
               '--cfg-options', 'test_dataloader.dataset.indices=30',
               env={'TORCH_HOME': str(guard / 'torch')})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'accuracy/top1' in proc.stdout + proc.stderr
    guard.freeze()


# ------------------------------------------------------------- divergence


def test_diverging_training_stops_with_status_1(guard):
    """PKKD on digits at lr 1e5: its losses turn NaN at iteration 5; the
    run stops there, says why, and writes no checkpoint."""
    work = guard / 'w'
    proc = run('tools/train.py', PKKD, '--work-dir', str(work),
               '--cfg-options', 'optim_wrapper.optimizer.lr=100000.0',
               'train_dataloader.dataset.indices=640',
               'val_dataloader.dataset.indices=60')
    assert_refused(proc, 1)
    line = one_error_line(proc, 'train.py')
    assert re.search(r'training diverged: .*loss\w* = nan at iteration \d',
                     line), line
    assert 'learning rate' in line
    assert not [n for n in os.listdir(work) if n.endswith('.pth')]
    guard.freeze()
