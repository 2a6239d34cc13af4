"""The smimig command run for a test: in this process (``cli.main``) or through the installed console script.

Both give a :class:`Ran`. A test module makes its ``smimig …`` caller with :func:`caller`; the ``invoke``
fixture (tests/conftest.py) runs a test once each way, the console script in the slow run.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

from smimig import cli

# The console script installed beside this interpreter (pip install . puts it there), else on PATH; found
# now, as a test may empty PATH.
_BESIDE = Path(sys.executable).parent / "smimig"
SMIMIG = str(_BESIDE) if _BESIDE.exists() else shutil.which("smimig") or ""


class Ran(NamedTuple):
    """What the command did: its exit code, stdout and stderr (``code, out, err = ran`` unpacks it)."""

    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.err.splitlines()


class Invoke(Protocol):
    """A way to run the command on ``argv``. With ``catch_exit``, argparse's own exit (a usage error,
    --help) is a :class:`Ran` with its code and text; without, a usage error raises ``SystemExit(2)``."""

    def __call__(self, argv: Sequence[str], *, catch_exit: bool = False) -> Ran: ...


def in_process(argv: Sequence[str], *, catch_exit: bool = False) -> Ran:
    """``cli.main(argv)`` with its output captured (with ``catch_exit``, argparse's, on sys.stdout and
    sys.stderr, too)."""
    out, err = io.StringIO(), io.StringIO()
    if not catch_exit:
        return Ran(cli.main(list(argv), out, err), out.getvalue(), err.getvalue())
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(argv), out, err)
        except SystemExit as exited:
            code = exited.code if isinstance(exited.code, int) else 1
    return Ran(code, out.getvalue(), err.getvalue())


def console_script(argv: Sequence[str], *, catch_exit: bool = False) -> Ran:
    """The installed ``smimig`` command, as a user types it; without ``catch_exit`` argparse's usage exit
    raises ``SystemExit(2)``, as it does in process."""
    assert SMIMIG, "pip install . puts 'smimig' on PATH"
    done = subprocess.run([SMIMIG, *argv], capture_output=True, text=True, check=False, timeout=120)
    if not catch_exit and done.returncode == 2 and done.stderr.startswith("usage:"):
        raise SystemExit(2)
    return Ran(done.returncode, done.stdout, done.stderr)


class Smimig(Protocol):
    """``smimig_cli("status")`` runs ``smimig [--simulate SPEC] status``; ``simulate=None`` leaves it out."""

    def __call__(self, *args: str, simulate: str | None = ...) -> Ran: ...


def caller(invoke: Invoke, simulate: str | None = None, *, catch_exit: bool = False) -> Smimig:
    """A caller of the command run by ``invoke``, with ``--simulate simulate`` unless a call says otherwise."""
    default = simulate

    def smimig(*args: str, simulate: str | None = default) -> Ran:
        return invoke([*(["--simulate", simulate] if simulate else []), *args], catch_exit=catch_exit)

    return smimig
