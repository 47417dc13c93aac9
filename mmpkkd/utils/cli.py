"""The end of every command-line tool: ``--debug``, and running the tool's
work so that a mistake is one line and an exit status (see
:mod:`mmpkkd.utils.errors`).

A tool parses its command line *before* it imports mmpkkd, so that
``--help`` and a wrong option answer at once, without loading torch::

    def parse_args(argv=None):
        parser = argparse.ArgumentParser(description='Count operations.')
        parser.add_argument('config')
        parser.add_argument('--debug', action='store_true',
                            help=DEBUG_HELP)  # or add_debug_arg(parser)
        return parser.parse_args(argv)

    if __name__ == '__main__':
        args = parse_args()  # --help ends here
        from mmpkkd.utils import run_tool
        run_tool(count, args, 'count_ops.py')

Importing :mod:`mmpkkd.utils` imports mmpkkd, which registers every
module, so the tool's work finds every config type. A tool that imports
mmpkkd at its top anyway (the benchmarks) declares the option with
:func:`add_debug_arg`.
"""
import argparse
from typing import Any, Callable, Optional

from .errors import report_errors

#: Help text of every tool's ``--debug``.
DEBUG_HELP = 'show the full traceback of an error'


def add_debug_arg(
        parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``--debug`` flag (:data:`DEBUG_HELP`) to ``parser``.

    Example:
        >>> parser = add_debug_arg(argparse.ArgumentParser())
        >>> parser.parse_args(['--debug']).debug
        True
    """
    parser.add_argument('--debug', action='store_true', help=DEBUG_HELP)
    return parser


def run_tool(main: Callable[[argparse.Namespace], Any],
             args: argparse.Namespace,
             name: str,
             debug: Optional[bool] = None) -> Any:
    """Run ``main(args)``, reporting an error as one line and an exit code.

    Args:
        main (Callable): The tool's work; it takes the parsed command line.
        args (argparse.Namespace): The parsed command line.
        name (str): The tool's name, printed before an error message.
        debug (bool, optional): Show the traceback instead. Default:
            ``args.debug``, else ``--debug`` in ``sys.argv`` or
            ``MMPKKD_DEBUG`` set.

    Returns:
        What ``main`` returned; a tool whose work returns its exit status
        ends with ``sys.exit(run_tool(...))``.

    Raises:
        SystemExit: 2 for a mistake in the command line, 1 for an input
            that cannot be used (:class:`~mmpkkd.utils.UserError`'s
            ``exit_code``), 130 when interrupted.

    Example:
        >>> def count(args):
        ...     raise UserError(f'config {args.config} does not exist',
        ...                     USAGE_EXIT)
        >>> run_tool(count, argparse.Namespace(config='x.py'), 'count.py')
        count.py: error: config x.py does not exist
        (--debug or MMPKKD_DEBUG=1 shows the traceback)
        SystemExit: 2
    """
    if debug is None:
        debug = getattr(args, 'debug', False) or None
    with report_errors(name, debug):
        return main(args)
