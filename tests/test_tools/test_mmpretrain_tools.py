"""Every shipped config under mmpretrain's own tools/train.py and test.py.

A user who knows mmpretrain drives our configs with the scripts inside the
installed mmpretrain wheel (``.mim/tools``, what ``mim train mmpretrain``
runs). Those scripts import nothing of mmpkkd, add their own dataloader
defaults (``persistent_workers=True``, ``pin_memory=True``,
``default_collate``) and resolve ``default_scope='mmpkkd'`` themselves.

One fresh interpreter (this file run as a script) trains every config for
one iteration, validates, and tests the checkpoint train.py wrote, with
tiny data in the real formats. Importing the tool chain once instead of
once per config keeps the whole sweep to about a minute.
"""
import glob
import json
import os
import os.path as osp
import runpy
import subprocess
import sys
import time
import traceback
from typing import Dict, List

import pytest

# not from conftest: the subprocess driver runs this file as a script,
# where conftest (which puts the checkout first on sys.path) must not load
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    osp.relpath(path, REPO)
    for kind in ('cnn', 'ann', 'pkkd')
    for path in glob.glob(osp.join(REPO, 'configs', kind, '*.py')))
BATCH = 2  # one training iteration: the training set is cut to BATCH images


def data_options(config: str, roots: Dict[str, str]) -> List[str]:
    """--cfg-options that point a config at the tiny data, cut every split
    to one batch and keep the run in one process.

    The digits configs run as shipped (``num_workers=0``, which is what
    mmpretrain's ``persistent_workers=True`` default used to break).
    CIFAR and ImageNet configs get ``num_workers=0`` too, with
    ``persistent_workers=False`` as a DataLoader without workers requires;
    their workers are exercised in test_resume_workers.py. ImageNet images
    are cropped to 32 pixels instead of 224 to keep the ResNet-50s fast.
    """
    opts = []
    for split in ('train', 'val', 'test'):
        loader = f'{split}_dataloader'
        opts.append(f'{loader}.batch_size={BATCH}')
        if 'fashionmnist' in config:
            # (the training set is wrapped in SeededDataset)
            inner = f'{loader}.dataset' + ('.dataset' if split == 'train'
                                           else '')
            opts += [f'{inner}.indices={BATCH}',
                     f'{inner}.data_root={roots["fashionmnist"]}']
            continue
        opts.append(f'{loader}.dataset.indices={BATCH}')
        if 'digits' in config:
            continue
        opts += [f'{loader}.num_workers=0',
                 f'{loader}.persistent_workers=False']
        imagenet = '_in1k' in config or 'imagenet' in config
        data = 'imagenet' if imagenet else (
            'cifar100' if 'cifar100' in config else 'cifar10')
        opts.append(f'{loader}.dataset.data_root={roots[data]}')
        if data == 'imagenet':
            if split == 'train':  # RandomResizedCrop
                opts.append(f'{loader}.dataset.pipeline.1.scale=32')
            else:  # ResizeEdge, CenterCrop
                opts += [f'{loader}.dataset.pipeline.1.scale=36',
                         f'{loader}.dataset.pipeline.2.crop_size=32']
        else:
            opts.append(f'{loader}.dataset.verify_md5=False')
    return opts


def runs(roots: Dict[str, str], work_root: str) -> List[dict]:
    """Arguments of mmpretrain's train.py and test.py for every config."""
    specs = []
    for config in CONFIGS:
        name = config.replace('/', '_')[:-3]
        work_dir = osp.join(work_root, name)
        options = data_options(config, roots)
        train = [
            config, '--work-dir', work_dir, '--cfg-options',
            # one epoch of one iteration, then validation; one checkpoint
            # of the weights alone for test.py (ResNet-50 PKKD: 0.2 GB
            # instead of 0.4 GB, plus as much again for a "best" copy)
            'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
            'default_hooks.checkpoint.save_optimizer=False',
            'default_hooks.checkpoint.save_best=None',
            'default_hooks.logger.interval=1', 'log_level=WARNING',
            f'experiment_name={name}_train', *options
        ]
        test = [
            config,
            osp.join(work_dir, 'epoch_1.pth'), '--work-dir', work_dir,
            '--out',
            osp.join(work_dir, 'metrics.json'), '--out-item', 'metrics',
            '--cfg-options', 'log_level=WARNING',
            f'experiment_name={name}_test', *options
        ]
        specs.append(dict(config=config, train=train, test=test))
    return specs


def run_mmpretrain_tool(script: str, argv: List[str]) -> None:
    """Run one of mmpretrain's scripts as ``python script argv...``."""
    saved = sys.argv
    sys.argv = [script, *argv]
    try:
        runpy.run_path(script, run_name='__main__')
    finally:
        sys.argv = saved


def drive(spec_file: str, result_file: str) -> None:
    """Subprocess side: train and test every config in turn; record errors
    instead of stopping, so that one run reports every failing config."""
    import mmpretrain
    tools = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'tools')
    assert 'mmpkkd' not in sys.modules  # the tools must find it themselves
    results = {}
    for spec in json.load(open(spec_file)):
        result = {}
        for step, script in (('train', 'train.py'), ('test', 'test.py')):
            start = time.perf_counter()
            try:
                run_mmpretrain_tool(osp.join(tools, script), spec[step])
            except BaseException:  # noqa: B902 (SystemExit included)
                result[step] = traceback.format_exc()[-3000:]
                break
            result[step] = 'ok'
            print(f"{spec['config']} {step}: "
                  f'{time.perf_counter() - start:.1f} s', flush=True)
        results[spec['config']] = result
        for ckpt in glob.glob(osp.join(spec['train'][2], '*.pth')):
            os.remove(ckpt)  # ResNet-50 PKKD writes ~0.4 GB
        with open(result_file, 'w') as f:  # partial results on a crash
            json.dump(results, f)


@pytest.fixture(scope='module')
def sweep(tmp_path_factory) -> Dict[str, dict]:
    """Results of every config, from one driver per CPU core (two on CI),
    each a fresh interpreter that runs its share of the configs."""
    from conftest import write_cifar, write_fashion_mnist, write_imagenet
    data = tmp_path_factory.mktemp('data')
    roots = dict(
        cifar10=write_cifar(str(data / 'cifar10'), 10, per_batch=2),
        cifar100=write_cifar(str(data / 'cifar100'), 100, per_batch=2),
        imagenet=write_imagenet(str(data / 'imagenet')),
        fashionmnist=write_fashion_mnist(str(data / 'fashion_mnist')))
    work = tmp_path_factory.mktemp('mmpretrain_tools')
    specs = runs(roots, str(work))
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env.pop('PYTHONPATH', None)  # the installed mmpkkd, as a user has it
    drivers, num = [], min(2, os.cpu_count() or 1)
    for i in range(num):
        spec_file = str(work / f'spec{i}.json')
        result_file = str(work / f'results{i}.json')
        with open(spec_file, 'w') as f:
            json.dump(specs[i::num], f)  # alternate: share the ResNet-50s
        log = open(str(work / f'driver{i}.log'), 'w')
        drivers.append((result_file, log, subprocess.Popen(
            [sys.executable, osp.abspath(__file__), spec_file, result_file],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)))
    results = {}
    for result_file, log, proc in drivers:
        proc.wait(timeout=1200)
        log.close()
        assert osp.isfile(result_file), open(log.name).read()[-3000:]
        results.update(json.load(open(result_file)))
    for config in CONFIGS:  # metrics written by test.py
        out = osp.join(str(work), config.replace('/', '_')[:-3],
                       'metrics.json')
        if config in results and osp.isfile(out):
            results[config]['metrics'] = json.load(open(out))
    return results


def test_every_shipped_config_is_swept():
    assert len(CONFIGS) >= 30
    assert {c.split('/')[1] for c in CONFIGS} == {'cnn', 'ann', 'pkkd'}


@pytest.mark.parametrize('config', CONFIGS)
def test_config_trains_and_tests_under_mmpretrain_tools(sweep, config):
    result = sweep.get(config)
    assert result is not None, 'the sweep stopped before this config'
    assert result['train'] == 'ok', result['train']
    assert result.get('test') == 'ok', result.get('test')
    # the test split is cut to BATCH images: a top-1 is a percentage of
    # a whole number of them (a metric over other data would not be)
    counts = [100 * k / BATCH for k in range(BATCH + 1)]
    metrics = result['metrics']
    assert metrics['accuracy/top1'] in counts, metrics
    if config.startswith('configs/pkkd/'):
        assert metrics['teacher/accuracy/top1'] in counts, metrics


if __name__ == '__main__':
    drive(*sys.argv[1:])
