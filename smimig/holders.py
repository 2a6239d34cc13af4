"""Who holds something: a process named by its pid, start time, user and boot, and whether it still runs.

The node lock's file and every lease entry name their holder so. A pid alone is not enough: pids are reused,
so a holder is also named by the time its process started (``/proc/<pid>/stat``, field 22: clock ticks
after boot) and the boot it started in (``/proc/sys/kernel/random/boot_id``); a recorded holder whose pid
now belongs to a process that started at another time, or in another boot, is gone.

>>> from smimig import holders
>>> me = holders.current()
>>> holders.state(me.pid, me.start_time, me.uid, me.boot_id)
'running'

Linux only (``/proc``). Where a process's ``/proc`` entry cannot be read (``hidepid``) but the pid exists,
or the holder ran in another pid namespace (a container sharing the host's ``/run/lock``: its pids are not
ours), the holder is taken to be running: smimig never treats as gone what it cannot see.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path
from typing import Literal

import attrs

from smimig._repr import AttrsRepr

__all__ = ["Holder", "HolderState", "boot_id", "current", "pid_namespace", "start_time", "state", "user_name"]

HolderState = Literal["running", "gone", "impostor"]
"""``running``; ``gone`` (no such process, a zombie, a reused pid, another boot); ``impostor``: the process
runs, but as another user than the one named (an entry that names someone else's process as its holder)."""

_PROC = Path("/proc")


@attrs.frozen(repr=False)
class Holder(AttrsRepr):
    """A process, named so that a reused pid is not mistaken for it."""

    pid: int
    start_time: int | None
    uid: int
    user: str
    boot_id: str | None
    pid_ns: int | None = None


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` from its third field on (the command name, in parentheses, may hold spaces)."""
    try:
        text = (_PROC / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def start_time(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks after boot; None when it cannot be read."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20 or not fields[19].isdigit():
        return None
    return int(fields[19])


def _effective_uid(pid: int) -> int | None:
    try:
        text = (_PROC / str(pid) / "status").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("Uid:"):
            ids = line.split()[1:]
            return int(ids[1]) if len(ids) > 1 and ids[1].isdigit() else None
    return None


def boot_id() -> str | None:
    """This boot's id (``/proc/sys/kernel/random/boot_id``); None where there is none."""
    try:
        return (_PROC / "sys" / "kernel" / "random" / "boot_id").read_text(encoding="ascii").strip() or None
    except OSError:
        return None


def pid_namespace() -> int | None:
    """This process's pid namespace (the inode of ``/proc/self/ns/pid``); None where it cannot be read."""
    try:
        return os.stat(_PROC / "self" / "ns" / "pid").st_ino
    except OSError:
        return None


def user_name(uid: int) -> str:
    """The login name of ``uid``, or ``uid N`` when it has none."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def current() -> Holder:
    """This process as a holder (its effective uid: the owner of the files it creates)."""
    uid = os.geteuid()
    return Holder(os.getpid(), start_time(os.getpid()), uid, user_name(uid), boot_id(), pid_namespace())


def state(pid: int, started: int | None, uid: int, boot: str | None, pid_ns: int | None = None) -> HolderState:
    """Whether the holder named by ``pid``, its start time, ``uid``, boot and pid namespace still runs (see
    the module)."""
    now = boot_id()
    if boot is not None and now is not None and boot != now:
        return "gone"
    ours = pid_namespace()
    if pid_ns is not None and ours is not None and pid_ns != ours:
        return "running"  # its pid means another process here: cannot tell, so never treated as gone
    if not _exists(pid):
        return "gone"
    fields = _stat_fields(pid)
    if fields is None:
        return "running"  # hidden from us (hidepid): cannot tell, so never treated as gone
    # a zombie has exited (its parent has not collected it yet); another start time: the pid was reused
    if fields[0] in ("Z", "X") or (started is not None and start_time(pid) != started):
        return "gone"
    owner = _effective_uid(pid)
    return "impostor" if owner is not None and owner != uid else "running"


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it runs, as another user
    return True
