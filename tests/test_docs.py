"""The README's commands and config references stay true."""
import glob
import os.path as osp
import re

from conftest import REPO  # noqa: E402


def readme() -> str:
    with open(osp.join(REPO, 'README.md')) as f:
        return f.read()


def setup_commands() -> list:
    """The bash blocks of the README's Set-up section, in order."""
    section = readme().split('## Set-up', 1)[1].split('\n## ', 1)[0]
    return [b.strip() for b in re.findall(r'```bash\n(.*?)```', section, re.S)]


def test_exactly_two_setup_commands_and_ci_runs_the_test_one():
    commands = setup_commands()
    assert len(commands) == 2
    assert 'tools/run_demo.py' in commands[0]
    assert 'pytest' in commands[1]
    with open(osp.join(REPO, '.ci', 'run')) as f:
        ci_lines = [line.strip() for line in f]
    assert commands[1] in ci_lines


def test_configs_named_in_readme_exist():
    names = set(re.findall(r'configs/[\w/.-]+\.py', readme()))
    assert names, 'the README names no config'
    for name in names:
        assert osp.isfile(osp.join(REPO, name)), name
    for name in re.findall(r'`([\w.-]+\.py)` \|', readme()):
        assert glob.glob(osp.join(REPO, 'configs', 'pkkd', name)), name
