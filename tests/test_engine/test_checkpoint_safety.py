"""Checkpoints load through torch's weights-only unpickler, never pickle."""
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import _load_checkpoint

from mmpkkd.engine import CheckpointError, safe_torch_load


class _Payload:
    """Pickles to a call of os.system that would create a marker file."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def _runner_like_checkpoint() -> dict:
    """What MMEngine's runner writes: weights, optimizer, message hub."""
    hub = MessageHub('test_ckpt')
    hub.update_scalar('train/loss', 1.25)
    hub.update_scalar('train/loss', 0.75)
    hub.update_info('epoch', 3)
    model = torch.nn.Linear(3, 2)
    optim = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3)).sum().backward()
    optim.step()
    return {
        'meta': {'epoch': 3, 'seed': 0, 'np_value': np.float64(0.5)},
        'state_dict': model.state_dict(),
        'optimizer': optim.state_dict(),
        'message_hub': hub.state_dict(),
        'rng_state': {'numpy': np.random.get_state()},
    }


def test_runner_checkpoint_round_trip(tmp_path):
    ckpt = _runner_like_checkpoint()
    path = str(tmp_path / 'epoch_3.pth')
    torch.save(ckpt, path)
    loaded = safe_torch_load(path, 'cpu')
    buf = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    assert buf.mean() == pytest.approx(1.0)  # (1.25 + 0.75) / 2
    assert loaded['meta']['np_value'] == 0.5
    np.testing.assert_array_equal(loaded['rng_state']['numpy'][1],
                                  ckpt['rng_state']['numpy'][1])
    for key, value in ckpt['state_dict'].items():
        assert torch.equal(loaded['state_dict'][key], value)


def test_mmengine_loader_uses_safe_load(tmp_path):
    """``load_from`` / ``--resume`` / tools/test.py go through the loader."""
    path = str(tmp_path / 'ok.pth')
    torch.save(_runner_like_checkpoint(), path)
    assert _load_checkpoint(path, 'cpu')['meta']['epoch'] == 3

    marker = str(tmp_path / 'pwned')
    evil = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'x': _Payload(marker)}, evil)
    with pytest.raises(CheckpointError, match='posix.system'):
        _load_checkpoint(evil, 'cpu')
    assert not osp.exists(marker), 'the pickle payload was executed'


def test_pickle_payload_refused_without_execution(tmp_path):
    marker = str(tmp_path / 'pwned')
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {'w': torch.ones(1)}, 'x': _Payload(marker)},
               path)
    with pytest.raises(CheckpointError, match='allow-list'):
        safe_torch_load(path)
    assert not osp.exists(marker)


def test_arbitrary_getattr_refused(tmp_path):
    """Only HistoryBuffer's statistics methods may be fetched by getattr."""
    path = str(tmp_path / 'getattr.pth')
    torch.save({'f': getattr(HistoryBuffer, '__init__')}, path)
    with pytest.raises(CheckpointError):
        safe_torch_load(path)


def test_truncated_checkpoint(tmp_path):
    path = str(tmp_path / 'ok.pth')
    torch.save(_runner_like_checkpoint(), path)
    data = open(path, 'rb').read()
    cut = str(tmp_path / 'cut.pth')
    with open(cut, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match='truncated or corrupt'):
        safe_torch_load(cut)


def test_garbage_and_missing_checkpoint(tmp_path):
    junk = str(tmp_path / 'junk.pth')
    with open(junk, 'wb') as f:
        f.write(b'not a checkpoint at all' * 10)
    with pytest.raises(CheckpointError, match='corrupt'):
        safe_torch_load(junk)
    with pytest.raises(CheckpointError, match='does not exist'):
        safe_torch_load(str(tmp_path / 'absent.pth'))
