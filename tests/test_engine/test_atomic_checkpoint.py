"""Checkpoints survive a kill at any moment of a save, and a full disk.

The kill test trains a tiny model with ``tools/train.py``'s ``main`` in a
forked process (the libraries are imported once, so each run takes a
fraction of a second), kills it with SIGKILL at random moments during its
checkpoint saves, checks what is on disk, and resumes it with ``--resume``.
"""
import errno
import os
import os.path as osp
import random
import select
import signal
import subprocess
import sys
import time
import traceback
from typing import Callable, List, Tuple

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel

from mmpkkd.engine.checkpoint import CheckpointError, safe_torch_load
from mmpkkd.engine.checkpoint import saving
from mmpkkd.registry import DATASETS, METRICS, MODELS
from mmpkkd.utils import report_errors

if not hasattr(os, 'fork'):  # pragma: no cover
    pytest.skip('needs os.fork', allow_module_level=True)

from conftest import REPO  # noqa: E402
from tools import train  # noqa: E402

EPOCHS = 4
#: Floats of dead weight in the model, so that a checkpoint is ~2 MB and
#: its write takes measurable time.
BALLAST = 1 << 19
KILLS = 24


@MODELS.register_module(name='_KillTestNet', force=True)
class KillTestNet(BaseModel):
    """A linear classifier of 4 numbers (plus ballast)."""

    def __init__(self, data_preprocessor=None):
        super().__init__(data_preprocessor=data_preprocessor)
        self.fc = nn.Linear(4, 2)
        self.register_buffer('ballast', torch.zeros(BALLAST))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        logits = self.fc(torch.stack(inputs))
        if mode == 'loss':
            return dict(loss=F.cross_entropy(logits,
                                             torch.tensor(data_samples)))
        if mode == 'predict':
            return [(int(p), int(t))
                    for p, t in zip(logits.argmax(1), data_samples)]
        return logits


@DATASETS.register_module(name='_KillTestData', force=True)
class KillTestData(torch.utils.data.Dataset):
    """Points whose class is the sign of their first coordinate."""

    def __init__(self, n: int, seed: int):
        gen = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 4, generator=gen)
        self.metainfo = dict(classes=('neg', 'pos'))

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], data_samples=int(self.x[i, 0] > 0))


@METRICS.register_module(name='_KillTestAccuracy', force=True)
class KillTestAccuracy(BaseMetric):

    def process(self, data_batch, data_samples):
        self.results.extend(p == t for p, t in data_samples)

    def compute_metrics(self, results):
        return dict(accuracy=100.0 * sum(results) / len(results))


CONFIG = f"""
default_scope = 'mmpkkd'
model = dict(type='_KillTestNet')
train_dataloader = dict(
    batch_size=8, num_workers=0,
    dataset=dict(type='_KillTestData', n=16, seed=0),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_dataloader = dict(
    batch_size=8, num_workers=0,
    dataset=dict(type='_KillTestData', n=64, seed=1),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='_KillTestAccuracy')
train_cfg = dict(by_epoch=True, max_epochs={EPOCHS}, val_interval=1)
val_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='AtomicCheckpointHook', interval=1,
                    max_keep_ckpts=1, save_best='auto'))
log_level = 'ERROR'
randomness = dict(seed=0)
"""


#: set in the fresh interpreter that runs a fork-based test's body
FRESH_ENV = 'MMPKKD_FORK_TEST_FRESH'


def ran_in_fresh_process(name: str) -> bool:
    """Run test ``name`` of this file in a fresh interpreter; True when it
    did (the caller returns), False inside that interpreter.

    A forked child cannot run autograd once the parent process has (any
    earlier test of the session that called backward): PyTorch refuses
    with "Unable to handle autograd's threading in combination with
    fork-based multiprocessing". The fork-based tests therefore fork from
    a process that has trained nothing.
    """
    if os.environ.get(FRESH_ENV):
        return False
    proc = subprocess.run(
        [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
         f'{osp.abspath(__file__)}::{name}'],
        cwd=REPO, capture_output=True, text=True,
        env=dict(os.environ, **{FRESH_ENV: '1'}))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return True


def fork_train(args: List[str], notify: int = -1,
               log: str = os.devnull, before: Callable = None) -> int:
    """Run ``tools/train.py`` ``args`` in a forked process, as its command
    line does (errors as one line and an exit status); its pid.

    With ``notify``, the child writes ``S<file>`` to that pipe when it
    starts writing a checkpoint and ``E<file>`` when the file is complete.
    ``before`` is called in the child first.
    """
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        # a forked child must not enter the parent's OpenMP thread pool
        # (earlier tests of the session may have started it): one thread
        torch.set_num_threads(1)
        if before is not None:
            before()
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.stdout = open(1, 'w', closefd=False)
        sys.stderr = open(2, 'w', closefd=False)
        if notify >= 0:
            from mmengine.runner import runner as runner_module
            save = runner_module.save_checkpoint

            def reporting_save(checkpoint, filename, *a, **kw):
                name = osp.basename(filename).encode()
                os.write(notify, b'S' + name + b'\n')
                save(checkpoint, filename, *a, **kw)
                os.write(notify, b'E' + name + b'\n')

            runner_module.save_checkpoint = reporting_save
        with report_errors('train.py', debug=False):
            train.main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    except BaseException:  # noqa: BLE001 - reported through the log
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def read_events(fd: int, timeout: float) -> List[Tuple[float, bytes]]:
    """Events the child wrote within ``timeout`` seconds (or until EOF)."""
    events, buffer, end = [], b'', time.monotonic() + timeout
    while time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], end - time.monotonic())
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        buffer += chunk
        while b'\n' in buffer:
            line, buffer = buffer.split(b'\n', 1)
            events.append((time.monotonic(), line))
    return events


def wait_exit(pid: int, timeout: float = 60) -> int:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError('the training did not finish')


def run_until_kill(args: List[str], kill_after: Callable) -> List[bytes]:
    """Start a training, SIGKILL it when ``kill_after(events)`` returns a
    delay (then after that many seconds); the events seen."""
    read_fd, write_fd = os.pipe()
    pid = fork_train(args, notify=write_fd)
    os.close(write_fd)
    events: List[bytes] = []
    buffer = b''
    while True:
        ready, _, _ = select.select([read_fd], [], [], 60)
        chunk = os.read(read_fd, 4096) if ready else b''
        if not chunk:  # the child finished (or hung: killed below)
            break
        buffer += chunk
        *lines, buffer = buffer.split(b'\n')
        events.extend(lines)
        delay = kill_after(events)
        if delay is not None:
            time.sleep(delay)
            os.kill(pid, signal.SIGKILL)
            break
    os.close(read_fd)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)
    return events


def complete(path: str) -> dict:
    """The checkpoint at ``path``, which must load in full."""
    ckpt = safe_torch_load(path)
    assert isinstance(ckpt, dict) and 'state_dict' in ckpt, path
    assert ckpt['state_dict']['ballast'].numel() == BALLAST, path
    return ckpt


@pytest.fixture(scope='module')
def config(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp('config') / 'kill_test.py'
    path.write_text(CONFIG)
    return str(path)


@pytest.fixture
def quick_runs(monkeypatch):
    """Runs of a fraction of a second: what the runner imports lazily is
    imported once here, before the forks, and the config text stored in
    each checkpoint is not formatted with yapf (0.1 s per save; not what
    this test is about)."""
    import matplotlib.pyplot  # noqa: F401  (the runner's visualizer)
    from mmengine.config import Config
    monkeypatch.setattr(Config, 'pretty_text',
                        property(lambda self: repr(self.to_dict())))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)  # later tests run as they would alone


@pytest.mark.usefixtures('quick_runs')
def test_sigkill_during_saves_always_resumes(config, tmp_path):
    if ran_in_fresh_process('test_sigkill_during_saves_always_resumes'):
        return
    # an uninterrupted run: how many saves, and how long each takes
    work = str(tmp_path / 'calibration')
    read_fd, write_fd = os.pipe()
    pid = fork_train([config, '--work-dir', work], notify=write_fd)
    os.close(write_fd)
    events = read_events(read_fd, 60)
    os.close(read_fd)
    assert os.waitstatus_to_exitcode(wait_exit(pid)) == 0
    starts = [t for t, e in events if e.startswith(b'S')]
    ends = [t for t, e in events if e.startswith(b'E')]
    assert len(starts) == len(ends) >= 2 * EPOCHS, events
    save_time = max(e - s for s, e in zip(starts, ends))
    saves = len(starts)

    rng = random.Random(0)
    resumed = best_seen = 0
    for attempt in range(KILLS):
        work = str(tmp_path / f'run{attempt}')
        target = rng.randint(1, saves)
        delay = rng.uniform(0, 2 * save_time)

        def kill_after(events, target=target, delay=delay):
            started = sum(e.startswith(b'S') for e in events)
            return delay if started >= target else None

        events = run_until_kill([config, '--work-dir', work], kill_after)
        names = os.listdir(work) if osp.isdir(work) else []
        where = f'attempt {attempt} (save {target}, +{delay:.4f} s): {names}'
        # no checkpoint under a final name is truncated
        for name in names:
            if name.endswith('.pth'):
                complete(osp.join(work, name))
        # once a best checkpoint was complete, one exists
        if any(e.startswith(b'Ebest_') for e in events):
            best_seen += 1
            assert any(n.startswith('best_') for n in names), where
        pointer = osp.join(work, 'last_checkpoint')
        if not osp.isfile(pointer):
            # killed before the first epoch checkpoint was complete, or
            # between its rename and the write of last_checkpoint
            done = [i for i, e in enumerate(events)
                    if e.startswith(b'Eepoch_')]
            assert not done or done[0] == len(events) - 1, where
            continue
        with open(pointer) as f:
            latest = complete(f.read().strip())
        # --resume continues from it to the end
        log = str(tmp_path / f'resume{attempt}.log')
        pid = fork_train([config, '--work-dir', work, '--resume'], log=log)
        status = os.waitstatus_to_exitcode(wait_exit(pid))
        assert status == 0, where + open(log).read()[-3000:]
        final = complete(osp.join(work, f'epoch_{EPOCHS}.pth'))
        assert final['meta']['epoch'] == EPOCHS, where
        assert final['meta']['iter'] == 2 * EPOCHS, where
        assert latest['meta']['epoch'] <= EPOCHS
        assert any(n.startswith('best_') for n in os.listdir(work)), where
        # the resumed run removed what the killed save left behind
        assert not [n for n in os.listdir(work) if n.endswith('.tmp')]
        resumed += 1
    # most kills leave something to resume, and some hit a best save
    assert resumed >= KILLS // 2 and best_seen >= 1, (resumed, best_seen)


# ------------------------------------------------------------ full disk


def test_full_disk_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / 'epoch_1.pth'
    saving.atomic_write(b'complete checkpoint', path)

    def half_then_full(f, data):
        f.write(data[:len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(saving, '_write', half_then_full)
    with pytest.raises(CheckpointError) as err:
        saving.atomic_write(b'new checkpoint, twice as long ...', path)
    assert 'No space left on device' in str(err.value)
    assert 'the previous file is unchanged' in str(err.value)
    assert path.read_bytes() == b'complete checkpoint'
    assert os.listdir(tmp_path) == ['epoch_1.pth']  # no temporary file


@pytest.mark.usefixtures('quick_runs')
def test_full_disk_during_training(config, tmp_path):
    """The disk fills up while epoch 2 is saved: the run stops with one
    line and status 2, epoch 1 and last_checkpoint are intact, and
    --resume continues once there is space again."""
    if ran_in_fresh_process('test_full_disk_during_training'):
        return
    work = str(tmp_path / 'run')

    def disk_full_after_first_checkpoint():
        real = saving._write

        def write(f, data):
            if f.name.endswith('epoch_2.pth' + saving.TMP_SUFFIX):
                f.write(data[:1000])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real(f, data)

        saving._write = write

    log = str(tmp_path / 'full.log')
    pid = fork_train([config, '--work-dir', work], log=log,
                     before=disk_full_after_first_checkpoint)
    assert os.waitstatus_to_exitcode(wait_exit(pid)) == 2
    errors = [line for line in open(log).read().splitlines()
              if line.startswith('train.py: error:')]
    assert len(errors) == 1, open(log).read()[-2000:]
    assert 'No space left on device' in errors[0], errors[0]
    assert 'epoch_2.pth' in errors[0] and '--resume' in errors[0]
    assert sorted(n for n in os.listdir(work) if 'pth' in n) == [
        'best_accuracy_epoch_1.pth', 'epoch_1.pth']
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert f.read() == osp.join(work, 'epoch_1.pth')
    assert complete(osp.join(work, 'epoch_1.pth'))['meta']['epoch'] == 1
    pid = fork_train([config, '--work-dir', work, '--resume'], log=log)
    assert os.waitstatus_to_exitcode(wait_exit(pid)) == 0
    assert complete(osp.join(work, f'epoch_{EPOCHS}.pth'))


def test_atomic_write_replaces_in_one_step(tmp_path, monkeypatch):
    """The final name goes from the old content to the new one by a rename
    of a synced temporary file in the same folder."""
    path = str(tmp_path / 'last_checkpoint')
    saving.atomic_write('old', path)
    calls = []
    real_replace, real_fsync = os.replace, os.fsync
    monkeypatch.setattr(os, 'fsync',
                        lambda fd: calls.append('fsync') or real_fsync(fd))

    def replace(src, dst):
        calls.append('replace')
        assert osp.dirname(src) == osp.dirname(dst)
        assert open(src).read() == 'new' and open(dst).read() == 'old'
        real_replace(src, dst)

    monkeypatch.setattr(os, 'replace', replace)
    saving.atomic_write('new', path)
    assert calls[:2] == ['fsync', 'replace']
    assert open(path).read() == 'new'
    assert sorted(os.listdir(tmp_path)) == ['last_checkpoint']


def test_default_runtime_saves_atomically():
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, 'configs/_base_/default_runtime.py'))
    assert cfg.default_hooks.checkpoint.type == 'AtomicCheckpointHook'
    assert cfg.default_hooks.finite_loss.type == 'FiniteLossHook'
    assert sys.modules['mmpkkd.engine.checkpoint.hook']
