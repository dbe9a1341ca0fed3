"""Child processes of the test suite: started so that Ctrl-C reaches them, killed in a ``finally``,
and none may outlive the suite.

``started(cmd, ...)`` is ``subprocess.Popen`` as a context manager: the child gets the default
SIGINT disposition back (a suite run in the background, ``pytest &``, starts with SIGINT ignored,
which children inherit and Python then keeps), and whatever happens in the test, the child is
killed and reaped on the way out.

``pytest_runtest_teardown`` (imported by conftest.py) runs after the last test of a session (of
each xdist worker: only its own descendants are looked at): joblib's reusable worker pool is shut
down, the remaining children get a grace period to exit, and any still running are killed and
reported as an error of that last test's teardown.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import pytest

GRACE_SECONDS = 10
# Helpers of multiprocessing that exit with their parent by design (a pipe closes), not leaks.
_INFRASTRUCTURE = ("resource_tracker", "forkserver", "semaphore_tracker")


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def started(cmd, **kwargs):
    """``Popen(cmd, **kwargs)`` whose child takes Ctrl-C and never outlives the ``with`` block."""
    if os.name == "posix":
        kwargs.setdefault("preexec_fn", _default_sigint)
    proc = subprocess.Popen(cmd, **kwargs)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _shut_joblib_pool() -> None:
    module = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(module, "_executor", None)  # only one that exists: never start a pool here
    if executor is not None:
        with contextlib.suppress(Exception):
            executor.shutdown(wait=True, kill_workers=True)


def leftover_children(grace: float | None = None) -> list[str]:
    """Descendants of this process still running after ``grace`` seconds (default
    :data:`GRACE_SECONDS`), killed; described."""
    psutil = pytest.importorskip("psutil")
    _shut_joblib_pool()
    me = psutil.Process()

    def alive():
        found = []
        for child in me.children(recursive=True):
            try:
                cmdline = " ".join(child.cmdline())
            except psutil.Error:
                continue
            if not any(name in cmdline for name in _INFRASTRUCTURE):
                found.append(child)
        return found

    _, survivors = psutil.wait_procs(alive(), timeout=GRACE_SECONDS if grace is None else grace)
    described = []
    for child in survivors:
        with contextlib.suppress(psutil.Error):
            described.append(f"pid {child.pid}: {' '.join(child.cmdline())[:200]}")
            child.kill()
    return described


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    result = yield
    if nextitem is None:  # the session's last test: every fixture, session-scoped too, is torn down
        left = leftover_children()
        if left:
            raise RuntimeError("child processes outlived the test suite (killed now): " + "; ".join(left))
    return result
