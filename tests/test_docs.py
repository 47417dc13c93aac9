"""The README's commands and config references stay true."""
import glob
import os.path as osp
import re

import pytest

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



# ------------------------------------------------------------------ links

FENCE = re.compile(r'^(```|~~~).*?^\1', re.M | re.S)
LINK = re.compile(r'\[[^\]]*\]\(([^)\s]+)\)')


def pages() -> list:
    """README.md, the config pages and every page under docs/."""
    found = ['README.md'] + sorted(
        glob.glob('configs/*/README.md', root_dir=REPO)) + sorted(
            glob.glob('docs/**/*.md', root_dir=REPO, recursive=True))
    return [p for p in found if '/gpu_check' not in p]  # raw tool output


def read(page: str) -> str:
    with open(osp.join(REPO, page)) as f:
        return f.read()


def anchors(text: str) -> set:
    """GitHub's anchors of the headings of a page's text."""
    found, seen = set(), {}
    for title in re.findall(r'^#{1,6} +(.+?) *$', FENCE.sub('', text), re.M):
        slug = re.sub(r'[^\w\- ]', '', title.lower()).replace(' ', '-')
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f'{slug}-{count}')
    return found


def test_anchor_rule_matches_github():
    """GitHub's rule: lower case, punctuation dropped, spaces to hyphens,
    repeats numbered; headings in code blocks are not headings."""
    text = ("## The sweep (val split): choosing PKKD's settings\n"
            '## `x` and y\n## `x` and y\n```bash\n# a comment\n```\n')
    assert anchors(text) == {
        'the-sweep-val-split-choosing-pkkds-settings', 'x-and-y', 'x-and-y-1'
    }


@pytest.mark.parametrize('page', pages())
def test_relative_links_resolve(page):
    """Every relative link of the README, the config pages and the docs
    points to a file or folder that exists, and its #anchor to a heading
    of that page."""
    broken = []
    for target in LINK.findall(FENCE.sub('', read(page))):
        if re.match(r'[a-z]+:', target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition('#')
        linked = osp.normpath(osp.join(osp.dirname(page), path)) \
            if path else page
        if not osp.exists(osp.join(REPO, linked)):
            broken.append(f'{target}: no such file')
        elif anchor and linked.endswith('.md') and anchor not in anchors(
                read(linked)):
            broken.append(f'{target}: no heading with this anchor')
    assert not broken, f'{page}: ' + '; '.join(broken)


@pytest.mark.parametrize('page', pages())
def test_configs_and_tools_named_in_docs_exist(page):
    """Paths such as configs/ann/x.py or tools/train.py in the text and in
    its commands exist."""
    names = set(re.findall(
        r'(?<![\w/.])((?:configs|tools)/[\w/.-]+\.(?:py|yaml|sh))\b',
        read(page)))
    missing = [n for n in sorted(names) if not osp.isfile(osp.join(REPO, n))]
    assert not missing, f'{page} names files that do not exist: {missing}'
