"""How the command-line tools report a mistake: one short message, no
traceback, exit status 2 (the command line) or 1 (an input's content).

``--debug`` on any tool, or ``MMPKKD_DEBUG=1`` in the environment, shows
the full traceback instead.
"""
import os
import sys
from contextlib import contextmanager
from typing import Iterator, Optional

#: Environment variable that makes every tool show tracebacks.
DEBUG_ENV = 'MMPKKD_DEBUG'

#: Exit status of a wrong command line (bad option, path that does not
#: exist), as argparse uses it, and of what must be fixed before a training
#: can run at all: a truncated or corrupt data file, a distilled layer name
#: that does not exist in both networks, a ``--cfg-options`` value of the
#: wrong type, a full disk.
USAGE_EXIT = 2
#: Exit status of an input that cannot be used (corrupt or mismatched
#: checkpoint, config with an error) or of work that failed.
INPUT_EXIT = 1


class UserError(Exception):
    """A mistake in the command line, the config or an input file.

    The message says what is wrong, naming the file or key, and what to do
    about it; the tools print it without a traceback.

    Args:
        message (str): The explanation shown to the user.
        exit_code (int): :data:`USAGE_EXIT` for a wrong command line,
            :data:`INPUT_EXIT` (default) for an input that cannot be used.
    """

    def __init__(self, message: str, exit_code: int = INPUT_EXIT):
        super().__init__(message)
        self.exit_code = exit_code


def debug_requested(argv: Optional[list] = None) -> bool:
    """Whether ``--debug`` is on the command line or ``MMPKKD_DEBUG`` set."""
    argv = sys.argv[1:] if argv is None else argv
    env = os.environ.get(DEBUG_ENV, '').strip().lower()
    return '--debug' in argv or env not in ('', '0', 'false', 'no')


def describe(err: BaseException) -> str:
    """One readable line (or a few) for an exception, without its chain."""
    if isinstance(err, SyntaxError) and err.filename:
        where = f'{err.filename}, line {err.lineno}'
        return f'syntax error in {where}: {err.msg}'
    if isinstance(err, KeyError) and len(err.args) == 1 and isinstance(
            err.args[0], str):
        text = err.args[0]  # str(KeyError) would quote the message
    elif isinstance(err, OSError) and err.filename and err.strerror:
        text = f'{err.strerror}: {err.filename}'
    else:
        text = str(err)
    if isinstance(err, (UserError, OSError)) or _is_ours(err):
        return text
    return f'{type(err).__name__}: {text}'


def _is_ours(err: BaseException) -> bool:
    """Errors whose message is written for users (CheckpointError, ...)."""
    return type(err).__name__ in ('CheckpointError', 'Int8FileError')


@contextmanager
def report_errors(prog: str, debug: Optional[bool] = None) -> Iterator[None]:
    """Turn an exception of a tool into a short message and an exit status.

    Args:
        prog (str): Name of the tool, printed before the message.
        debug (bool, optional): Re-raise (full traceback) instead. Default:
            :func:`debug_requested`.

    Example:
        >>> with report_errors('train.py'):
        ...     raise UserError('config x.py does not exist', USAGE_EXIT)
        train.py: error: config x.py does not exist
        (--debug or MMPKKD_DEBUG=1 shows the traceback)
        SystemExit: 2
    """
    debug = debug_requested() if debug is None else debug
    try:
        yield
    except KeyboardInterrupt:
        if debug:
            raise
        print(f'{prog}: interrupted', file=sys.stderr)
        raise SystemExit(130)
    except Exception as err:  # noqa: BLE001 - every error is reported
        if debug:
            raise
        code = getattr(err, 'exit_code', INPUT_EXIT)
        print(f'{prog}: error: {describe(err)}', file=sys.stderr)
        print(f'(--debug or {DEBUG_ENV}=1 shows the traceback)',
              file=sys.stderr)
        raise SystemExit(code) from None
