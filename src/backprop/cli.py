"""Command line: argparse sub-commands; ``main(argv) -> int``.

Each sub-command lives in a module of ``backprop.commands`` that defines ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``; they are found automatically. Errors are one
line on stderr: exit 2 for usage, 1 for data or model problems; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
import sys
import traceback

from . import __version__, commands

__all__ = ["main", "build_parser"]


def _command_modules():
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"{commands.__name__}.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
        p.set_defaults(_run=module.run)
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
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("backprop: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except (ValueError, TypeError, OSError, KeyError) as exc:
        if args.debug:
            traceback.print_exc()
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"backprop: error: {message}", file=sys.stderr)
        return 1
