"""mmpkkd.experiments is the library under the sweep tools: it never
imports the tools (which the layers contract of tests/test_layers.py does
not see), nor builds models itself (no mmpkkd.apis)."""
import ast
import glob
import os.path as osp

from conftest import REPO  # noqa: E402

FORBIDDEN = ('tools', 'mmpkkd.apis')


def imported_modules(path):
    tree = ast.parse(open(path).read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module
            yield from (f'{node.module}.{alias.name}'
                        for alias in node.names)


def test_experiments_import_no_higher_layer():
    files = glob.glob(osp.join(REPO, 'mmpkkd', 'experiments', '*.py'))
    assert len(files) >= 6
    bad = [(osp.basename(f), m) for f in files for m in imported_modules(f)
           if any(m == p or m.startswith(p + '.') for p in FORBIDDEN)]
    assert not bad, bad
