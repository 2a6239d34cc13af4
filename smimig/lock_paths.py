"""Where the node lock and the lease ledger live: the one rule that places them, with ``os.path`` alone.

:mod:`smimig.locking` and :mod:`smimig.ledger` (with pathlib, json and their attrs classes) are what taking the
lock or reading and writing the ledger load; ``smimig status`` only needs to know, at every start, whether
the ledger is there at all (leases mark instances on its maps), so the places are decided here, at no cost,
and those modules build their paths from these.

>>> ledger_directory("/run/lock/smimig.lock")
'/run/lock/smimig.leases'
"""

from __future__ import annotations

import os
import stat
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smimig.client import Smi

__all__ = ["LOCK_ENV", "default_lock_file", "ledger_directory", "lock_file_for"]

LOCK_ENV = "SMIMIG_LOCK_FILE"
"""The environment variable that names the node lock file."""

_RUN_LOCK = "/run/lock"
_SHARED_TMP = "/tmp"  # noqa: S108  # one place for every user: the lock is meant to be shared


def default_lock_file() -> str:
    """``$SMIMIG_LOCK_FILE``; else ``/run/lock/smimig.lock`` where it exists (made at boot, as README's set-up
    does) or where anyone may make it (``/run/lock`` is 1777 on Debian and Ubuntu); else ``/tmp/smimig.lock``.

    The rule gives root and every user the same file, which is the point of a lock: asking "may *I* write
    /run/lock?" put root's lock there and users' in /tmp where /run/lock is root's alone (0755 on Fedora, RHEL,
    Arch), and neither waited for the other. Not ``$TMPDIR`` either, which can differ from user to user.
    """
    if os.environ.get(LOCK_ENV):
        return os.environ[LOCK_ENV]
    shared = os.path.join(_RUN_LOCK, "smimig.lock")
    if os.path.lexists(shared) or _anyone_may_create_in(_RUN_LOCK):
        return shared
    if os.path.isdir(_SHARED_TMP):
        return os.path.join(_SHARED_TMP, "smimig.lock")
    import tempfile  # noqa: PLC0415  # only on a system without /tmp

    return os.path.join(tempfile.gettempdir(), "smimig.lock")


def _anyone_may_create_in(directory: str) -> bool:
    try:
        mode = os.stat(directory).st_mode
    except OSError:
        return False
    return stat.S_ISDIR(mode) and bool(mode & stat.S_IWOTH)


def lock_file_for(smi: Smi | None = None) -> str:
    """The lock file that guards the node ``smi`` changes: beside the state file for a simulated node kept in
    a file (``--simulate``), else :func:`default_lock_file`."""
    sim = sys.modules.get("smimig.sim")  # not loaded: the runner cannot be one of its classes
    runner = getattr(smi, "runner", None)
    if sim is not None and isinstance(runner, sim.StateFileRunner):
        return _clean(runner.path) + ".node.lock"
    return default_lock_file()


def ledger_directory(lock_file: str | os.PathLike[str]) -> str:
    """The ledger directory beside ``lock_file``: ``/run/lock/smimig.lock`` -> ``/run/lock/smimig.leases`` (the
    lock file's name without its suffix, as :attr:`pathlib.PurePath.suffix` reads one)."""
    head, name = os.path.split(_clean(lock_file))
    dot = name.rfind(".")
    stem = name[:dot] if 0 < dot < len(name) - 1 else name
    return os.path.join(head, stem + ".leases")


def _clean(path: str | os.PathLike[str]) -> str:
    """``path`` without the trailing slashes pathlib drops."""
    text = os.fspath(path)
    return text.rstrip("/") or text
