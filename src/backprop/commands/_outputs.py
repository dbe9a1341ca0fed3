"""Input and output paths of the sub-commands, checked before any work starts.

``cli.main`` calls :func:`check_paths` between parsing and the command's ``run``: no output may be
one of the command's inputs or another of its outputs (compared after following symbolic links),
and each output must be writable: its folder exists and a file can be created there (tried with a
real temporary file, removed at once, so read-only file systems and ``/proc`` are found), and the
path is not a folder. Every refusal is one line naming the option and the path as the user typed it.

A command names its paths in :data:`PATHS` (by argparse ``dest``), or with a ``PATHS`` attribute
of its module (a :class:`Paths`) for a new command.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .._validation import BackpropError

__all__ = ["Paths", "PATHS", "check_paths", "check_writable", "paths_of"]


@dataclass(frozen=True)
class Paths:
    """The ``dest`` names of a command's input files, output files and output folders."""

    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()  # output folders, created when missing (``--checkpoint DIR``)


PATHS: dict[str, Paths] = {
    "train": Paths(inputs=("data",), outputs=("out", "plot"), folders=("checkpoint",)),
    "tune": Paths(inputs=("data",), outputs=("out", "results")),
    "predict": Paths(inputs=("model", "data"), outputs=("out",)),
    "evaluate": Paths(inputs=("model", "data")),
    "info": Paths(inputs=("model",)),
    "plot-boundary": Paths(inputs=("model", "data"), outputs=("out",)),
    "export": Paths(inputs=("model",), outputs=("out",)),
    "explain": Paths(inputs=("model", "data"), outputs=("output", "diagram")),
    "demo": Paths(),
}


def paths_of(module) -> Paths:
    """The declared paths of a command module (its ``PATHS`` attribute, else :data:`PATHS`)."""
    return getattr(module, "PATHS", None) or PATHS.get(module.NAME, Paths())


def _real(path) -> str:
    return os.path.realpath(os.fspath(path))


def _same(a, b) -> bool:
    if _real(a) == _real(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links too
    except OSError:
        return False


def check_writable(path, option: str) -> None:
    """Refuse, in one line naming ``option`` and ``path``, an output file that cannot be written."""
    shown = repr(str(path))
    target = Path(_real(path))
    if target.is_dir():
        raise BackpropError(f"`{option}`: cannot write {shown}: it is a folder; give a file name")
    folder = target.parent
    if not folder.exists():
        raise BackpropError(f"`{option}`: cannot write {shown}: its folder does not exist")
    if not folder.is_dir():
        raise BackpropError(f"`{option}`: cannot write {shown}: {str(Path(path).parent)!r} is not a folder")
    _probe(folder, shown, option)


def _probe(folder: Path, shown: str, option: str) -> None:
    """Create and remove a temporary file in ``folder``: the only sure test of writability."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".backprop-probe-", dir=folder)
    except OSError as exc:
        raise BackpropError(f"`{option}`: cannot write {shown}: no file can be created in its folder "
                            f"({exc.strerror or type(exc).__name__})") from None
    os.close(fd)
    os.unlink(tmp)


def check_folder(path, option: str) -> None:
    """An output folder: a folder that can be written, or a missing one whose nearest existing
    parent can be (it is created later)."""
    shown = repr(str(path))
    target = Path(_real(path))
    if target.exists() and not target.is_dir():
        raise BackpropError(f"`{option}` must be a folder; got {shown}, a file")
    while not target.exists():
        target = target.parent
    if not target.is_dir():
        raise BackpropError(f"`{option}`: cannot create the folder {shown}: {str(target)!r} is a file")
    _probe(target, shown, option)


def check_paths(args, paths: Paths, flags: dict[str, str]) -> None:
    """All the checks of this module for a parsed command line; ``flags`` maps each ``dest`` to
    the option's name as typed (``--out``) or the positional argument's (``data``)."""
    def given(names):
        return [(flags.get(d, d), v) for d in names if (v := getattr(args, d, None)) not in (None, "-")]

    inputs, outputs = given(paths.inputs), given(paths.outputs)
    for k, (flag, value) in enumerate(outputs):
        for input_flag, source in inputs:
            if os.path.exists(source) and _same(value, source):
                raise BackpropError(f"`{flag}` must not overwrite the input file {str(source)!r} "
                                    f"(`{input_flag}`); choose another name")
        for other_flag, other in outputs[:k]:
            if _same(value, other):
                both = (f"{str(value)!r} for both" if str(value) == str(other)
                        else f"{str(value)!r} and {str(other)!r}, the same file")
                raise BackpropError(f"`{flag}` and `{other_flag}` must be different files; got {both}")
        check_writable(value, flag)
    for flag, value in given(paths.folders):
        check_folder(value, flag)
