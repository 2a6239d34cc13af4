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
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smimig.client import Smi

__all__ = ["LOCK_ENV", "default_lock_file", "ledger_directory", "lock_file_for"]

LOCK_ENV = "SMIMIG_LOCK_FILE"
"""The environment variable that names the node lock file."""

_RUN_LOCK = "/run/lock"


def default_lock_file() -> str:
    """``$SMIMIG_LOCK_FILE``, else ``/run/lock/smimig.lock`` (shared by root and users alike), else one in
    the temporary directory."""
    if os.environ.get(LOCK_ENV):
        return os.environ[LOCK_ENV]
    if os.path.isdir(_RUN_LOCK) and os.access(_RUN_LOCK, os.W_OK):
        return os.path.join(_RUN_LOCK, "smimig.lock")
    import tempfile  # noqa: PLC0415  # only without /run/lock

    return os.path.join(tempfile.gettempdir(), "smimig.lock")


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
