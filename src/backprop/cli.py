"""Command line: argparse sub-commands; ``main(argv) -> int``.

Each sub-command lives in a module of ``backprop.commands`` that defines ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``; they are found automatically. Its input and
output paths (``commands/_outputs.py``) are checked before ``run``: no output over an input or
over another output, every output writable.

Errors are one line on stderr: exit 2 for usage (argparse, or a :class:`UsageError`), 1 for data,
model or file problems (:class:`BackpropError`, the system refusing a file, not enough memory),
3 for anything else, which is a bug of backprop and says so; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
import sys
import traceback

from . import __version__, commands
from ._validation import BackpropError, UsageError
from .commands._outputs import check_paths, paths_of

__all__ = ["main", "build_parser", "EXIT_USAGE", "EXIT_ERROR", "EXIT_INTERNAL"]

EXIT_ERROR, EXIT_USAGE, EXIT_INTERNAL = 1, 2, 3


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error: ``backprop train: error: argument --epochs: ...``."""

    def error(self, message: str):
        sys.stderr.write(f"{self.prog}: error: {' '.join(message.split())} (see `{self.prog} --help`)\n")
        raise SystemExit(EXIT_USAGE)


def _command_modules():
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"{commands.__name__}.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="backprop",
        description="Train neural networks by backpropagation, and see every number of it.",
    )
    parser.add_argument("--version", action="version", version=f"backprop {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules():
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show full tracebacks on errors")
        module.add_arguments(p)
        flags = {a.dest: next((o for o in a.option_strings if o.startswith("--")), a.dest) for a in p._actions}
        p.set_defaults(_run=module.run, _paths=(paths_of(module), flags))
    return parser


_NEGATIVE_VALUE = re.compile(r"^-(\d|\.\d|inf|nan)[^\s]*$", re.IGNORECASE)


def join_negative_values(argv: list[str]) -> list[str]:
    """``--weights -0.5,0.25`` -> ``--weights=-0.5,0.25``: argparse reads a value that starts with
    a minus sign and is not a plain number as an option ("expected one argument"), so a long
    option followed by a negative number (list) is joined to it. ``--`` ends the rewriting."""
    out: list[str] = []
    for i, token in enumerate(argv):
        if token == "--":
            return out + list(argv[i:])
        prev = out[-1] if out else ""
        if (_NEGATIVE_VALUE.match(token) and prev.startswith("--") and "=" not in prev
                and len(prev) > 2):
            out[-1] = f"{prev}={token}"
        else:
            out.append(token)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = join_negative_values(sys.argv[1:] if argv is None else list(argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 0 for --help/--version, 2 for usage errors
        return int(exc.code or 0)
    if getattr(args, "_run", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        check_paths(args, *args._paths)
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("backprop: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except BackpropError as exc:  # raised on purpose: the user's input, data, model or files
        _debug(args)
        print(f"backprop: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, UsageError) else EXIT_ERROR
    except OSError as exc:  # the system refused a file (permissions, a full disk, ...)
        _debug(args)
        where = f"`{exc.filename}`: " if exc.filename else ""
        print(f"backprop: error: {where}{exc.strerror or _one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except MemoryError as exc:  # a network, batch or file too large for this machine: not a bug
        _debug(args)
        print(f"backprop: error: not enough memory: {_one_line(exc)}; try a smaller network, batch "
              "or data file", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # anything else is a bug of backprop
        _debug(args)
        print(f"backprop: internal error, please report: {type(exc).__name__}: {_one_line(exc)}"
              + ("" if args.debug else " (run with --debug for the traceback)"), file=sys.stderr)
        return EXIT_INTERNAL


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _debug(args) -> None:
    if getattr(args, "debug", False):
        traceback.print_exc()
