"""mmpkkd.utils.cli: the tools' --debug flag and run_tool()."""
import argparse

import pytest

from mmpkkd.utils import (DEBUG_HELP, INPUT_EXIT, USAGE_EXIT, UserError,
                          add_debug_arg, run_tool)


def test_add_debug_arg_declares_the_flag_with_its_help():
    parser = add_debug_arg(argparse.ArgumentParser(prog='x.py'))
    assert parser.parse_args([]).debug is False
    assert parser.parse_args(['--debug']).debug is True
    assert DEBUG_HELP in parser.format_help()


def test_run_tool_returns_what_the_work_returns():
    args = argparse.Namespace(value=3, debug=False)
    assert run_tool(lambda a: a.value * 2, args, 'x.py') == 6


@pytest.mark.parametrize('error, code, message', [
    (UserError('config x.py does not exist', USAGE_EXIT), USAGE_EXIT,
     'x.py: error: config x.py does not exist'),
    (UserError('checkpoint y.pth is truncated'), INPUT_EXIT,
     'x.py: error: checkpoint y.pth is truncated'),
    (ValueError('bad value'), INPUT_EXIT, 'x.py: error: ValueError: bad '
     'value'),
])
def test_run_tool_reports_an_error_in_one_line(capsys, monkeypatch, error,
                                               code, message):
    monkeypatch.delenv('MMPKKD_DEBUG', raising=False)
    monkeypatch.setattr('sys.argv', ['x.py'])

    def work(args):
        raise error

    with pytest.raises(SystemExit) as exc:
        run_tool(work, argparse.Namespace(debug=False), 'x.py')
    assert exc.value.code == code
    err = capsys.readouterr().err
    assert err.splitlines()[0] == message
    assert 'Traceback' not in err


def test_run_tool_interrupted_exits_130(capsys, monkeypatch):
    monkeypatch.delenv('MMPKKD_DEBUG', raising=False)
    monkeypatch.setattr('sys.argv', ['x.py'])

    def work(args):
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exc:
        run_tool(work, argparse.Namespace(), 'x.py')
    assert exc.value.code == 130
    assert capsys.readouterr().err == 'x.py: interrupted\n'


@pytest.mark.parametrize('how', ['args', 'env', 'argument'])
def test_debug_lets_the_error_through(monkeypatch, how):
    monkeypatch.delenv('MMPKKD_DEBUG', raising=False)
    monkeypatch.setattr('sys.argv', ['x.py'])
    args, debug = argparse.Namespace(debug=False), None
    if how == 'args':
        args.debug = True
    elif how == 'env':
        monkeypatch.setenv('MMPKKD_DEBUG', '1')
    else:
        debug = True

    def work(args):
        raise UserError('wrong', USAGE_EXIT)

    with pytest.raises(UserError, match='wrong'):
        run_tool(work, args, 'x.py', debug=debug)
