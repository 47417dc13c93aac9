"""The package's imports point down its layers (``[tool.importlinter]`` in
pyproject.toml), checked by import-linter's ``lint-imports``.

The layers, top to bottom (``|``: siblings that do not import each other)::

    experiments
    analysis | runtime | visualization
    apis
    quantization
    engine
    datasets | evaluation | models
    ops
    utils
    registry | version

The contract is exhaustive: a new subpackage of ``mmpkkd`` must be given a
layer, or the check fails.
"""
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest

from conftest import REPO  # noqa: E402


def lint_imports(root: str) -> subprocess.CompletedProcess:
    """``lint-imports`` on the ``mmpkkd`` package under ``root``, with the
    contract of ``root/pyproject.toml``."""
    script = shutil.which('lint-imports') or osp.join(
        osp.dirname(sys.executable), 'lint-imports')
    env = dict(os.environ, PYTHONPATH=root)
    return subprocess.run(
        [script, '--no-cache', '--no-logo', 'pyproject.toml'],
        cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_imports_point_down_the_layers():
    proc = lint_imports(REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'KEPT' in proc.stdout


@pytest.fixture(scope='module')
def package_copy(tmp_path_factory):
    """A copy of the package's Python files and the contract, to break."""
    root = tmp_path_factory.mktemp('layers')
    shutil.copytree(
        osp.join(REPO, 'mmpkkd'), root / 'mmpkkd',
        ignore=shutil.ignore_patterns('__pycache__', 'csrc', '*.so'))
    shutil.copy(osp.join(REPO, 'pyproject.toml'), root)
    return root


@pytest.mark.parametrize('module, imported, message', [
    ('utils/paths.py', 'mmpkkd.engine',
     'mmpkkd.utils is not allowed to import mmpkkd.engine'),
    ('quantization/serialization.py', 'mmpkkd.apis',
     'mmpkkd.quantization is not allowed to import mmpkkd.apis'),
    ('analysis/networks.py', 'mmpkkd.visualization',
     'mmpkkd.analysis is not allowed to import mmpkkd.visualization'),
    ('apis/model.py', 'mmpkkd.runtime',
     'mmpkkd.apis is not allowed to import mmpkkd.runtime'),
])
def test_an_upward_or_sideways_import_fails(package_copy, module, imported,
                                            message):
    path = package_copy / 'mmpkkd' / module
    text = path.read_text()
    try:
        path.write_text(text + f'\n\ndef _probe():\n    import {imported}\n')
        proc = lint_imports(str(package_copy))
    finally:
        path.write_text(text)
    assert proc.returncode != 0
    assert message in proc.stdout, proc.stdout
    dotted = 'mmpkkd.' + module[:-len('.py')].replace('/', '.')
    assert f'{dotted} -> {imported}' in proc.stdout, proc.stdout


def test_a_package_without_a_layer_fails(package_copy):
    new = package_copy / 'mmpkkd' / 'unplaced'
    new.mkdir()
    (new / '__init__.py').write_text('')
    try:
        proc = lint_imports(str(package_copy))
    finally:
        shutil.rmtree(new)
    assert proc.returncode != 0
    assert 'mmpkkd.unplaced' in proc.stdout + proc.stderr
