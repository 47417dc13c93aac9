"""mmpkkd.runtime: the work-dir policy and the runner's log filter."""
import logging
import os

import pytest

from mmpkkd.runtime import KnownNoiseFilter, plan_run
from mmpkkd.utils import UserError


def test_plan_run(tmp_path):
    work = tmp_path / 'w'
    assert plan_run(str(work)) is None  # new work dir
    work.mkdir()
    (work / 'epoch_2.pth').write_bytes(b'x')
    with pytest.raises(UserError, match='earlier run'):
        plan_run(str(work))
    with pytest.raises(UserError, match='nothing to resume.*epoch_2.pth'):
        plan_run(str(work), resume='auto')
    (work / 'last_checkpoint').write_text(str(work / 'epoch_2.pth'))
    assert plan_run(str(work), resume='auto') == str(work / 'epoch_2.pth')
    with pytest.raises(UserError, match='would delete load_from'):
        plan_run(str(work), overwrite=True,
                 load_from=str(work / 'epoch_2.pth'))
    assert plan_run(str(work), overwrite=True) is None
    assert os.listdir(work) == []


def test_noise_filter():
    noise = KnownNoiseFilter(cuda=False)

    def record(msg):
        return logging.LogRecord('mmengine', logging.INFO, '', 0, msg, (),
                                 None)

    assert not noise.filter(record('"FileClient" will be deprecated in '
                                   'future. Please use io functions'))
    env = record('Distributed training: False\n    GPU number: 2\n')
    assert noise.filter(env) and 'processes: 2 (CPU)' in env.msg
    env = record('GPU number: 2')
    assert KnownNoiseFilter(cuda=True).filter(env) and env.msg == \
        'GPU number: 2'
