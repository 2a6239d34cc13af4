"""The node lock: one lock for every change smimig makes to a node, in a file that says who holds it.

Every change holds it: a lease's acquire and its release, ``apply`` (its rollback included), ``reclaim``, and
the command line's ``mode``, ``create-gi``, ``create-ci``, ``destroy-ci`` and ``destroy-gi``. Reads never
take it. It is re-entrant within a thread (a lease that reclaims orphans first, an apply and its rollback:
one acquisition); other threads of the process wait for it as other processes do.

>>> from smimig.locking import node_lock
>>> with node_lock(timeout=30):
...     pass  # no other smimig changes this node meanwhile

Where: ``$SMIMIG_LOCK_FILE``, else ``/run/lock/smimig.lock`` (``/run/lock`` is on every Linux node, wiped at
boot as MIG instances are), else ``smimig.lock`` in the temporary directory. A simulated node kept in a file
(``smimig --simulate``, :class:`~smimig.sim.StateFileRunner`) has its own lock beside that file, so a
simulation never waits for, or writes to, the real node's.

Who holds it: once acquired, the holder writes one JSON line into the lock file (pid, the process's start
time, uid, user, command line, since when) and empties it again before letting go. Someone who waits longer
than a second is told who holds it (``on_wait``; by default one line on stderr), and a timeout raises
:class:`~smimig.NodeLockTimeout` naming the holder. The line is for people to read: nothing trusts it.

Why ``fcntl.flock`` and not ``filelock``: filelock 3 opens the lock file with ``O_TRUNC`` at every attempt,
so each waiter would wipe the holder's line; filelock 4 may remove the file or fall back to a lock made of
a file's existence. This lock needs only an exclusive ``flock`` on a file that stays where it is, written
through the same descriptor, and a wait that can say who it waits for.

Who may own it: anyone who can replace the lock file can hand two processes two different locks, so smimig
refuses (:class:`~smimig.LedgerError`) a lock file that is not a regular file (a symbolic link is never
followed), that belongs to someone other than root or you, or that sits in a directory which someone else
could change (one that others may write needs the sticky bit, as ``/run/lock`` and ``/tmp`` have). root
adopts a lock file a user created first (it becomes root's). README's "Shared nodes" says how a lab sets it up.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shlex
import stat
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import attrs

from smimig import holders
from smimig._repr import AttrsRepr
from smimig.errors import LedgerError, NodeLockTimeout
from smimig.lock_paths import LOCK_ENV, default_lock_file, lock_file_for

if TYPE_CHECKING:
    from smimig.client import Smi

__all__ = [
    "DEFAULT_TIMEOUT",
    "LOCK_ENV",
    "NOTICE_AFTER",
    "TIMEOUT_ENV",
    "LockHolder",
    "OnWait",
    "default_lock_path",
    "holding",
    "lock_holder",
    "lock_path_for",
    "node_lock",
    "untrusted_reason",
]

TIMEOUT_ENV = "SMIMIG_LOCK_TIMEOUT"
"""The environment variable that sets how many seconds a change waits for the node lock (default 120)."""

DEFAULT_TIMEOUT = 120.0
"""Seconds a change waits for the node lock when neither the caller nor ``$SMIMIG_LOCK_TIMEOUT`` says."""

NOTICE_AFTER = 1.0
"""Seconds of waiting after which ``on_wait`` is told who holds the lock."""

_MAX_COMMAND = 300  # characters of the holder's command line kept in the lock file


@attrs.frozen(repr=False)
class LockHolder(AttrsRepr):
    """Who holds the node lock, as its lock file says (for people to read: never trusted)."""

    pid: int
    user: str
    command: str
    since: str
    uid: int | None = None
    start_time: int | None = None

    def __str__(self) -> str:
        return f"PID {self.pid} ({self.user}, since {self.since}): {self.command}"


OnWait = Callable[[Path, Optional[LockHolder]], object]
"""Called once when a wait for the node lock passes :data:`NOTICE_AFTER`: the lock file and its holder."""


def default_lock_path() -> Path:
    """``$SMIMIG_LOCK_FILE``, else ``/run/lock/smimig.lock`` where it exists or anyone may make it, else
    ``/tmp/smimig.lock``: the same file for root and users alike (:func:`smimig.lock_paths.default_lock_file`)."""
    return Path(default_lock_file())


def lock_path_for(smi: Smi | None = None) -> Path:
    """The lock file that guards the node ``smi`` changes: beside the state file for a simulated node kept in
    a file (``--simulate``), else :func:`default_lock_path` (:func:`smimig.lock_paths.lock_file_for`)."""
    return Path(lock_file_for(smi))


def _timeout(timeout: float | None) -> float:
    if timeout is None:
        text = os.environ.get(TIMEOUT_ENV, "")
        try:
            timeout = float(text) if text else DEFAULT_TIMEOUT
        except ValueError:
            raise ValueError(f"${TIMEOUT_ENV} must be a number of seconds; got {text!r}") from None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
        raise ValueError(f"timeout must be a non-negative number of seconds; got {timeout!r}")
    return float(timeout)


# -- who may own what ---------------------------------------------------------------------------------


def _trusted_owner(uid: int) -> bool:
    return uid in (0, os.geteuid())


def _who(uid: int) -> str:
    return f"{holders.user_name(uid)} (uid {uid})"


def untrusted_reason(directory: Path) -> str | None:
    """Why someone other than root or you could change what ``directory`` holds, or None when nobody can.

    ``directory`` and every directory above it must belong to root or to you, and one that others may
    write must have the sticky bit (then they cannot remove or rename what is not theirs); a symbolic link
    on the way must belong to root or to you. A part that does not exist yet is not judged.
    """
    absolute = Path(os.path.abspath(directory))
    for prefix in [*reversed(absolute.parents), absolute]:
        try:
            info = os.lstat(prefix)
        except FileNotFoundError:
            break
        if stat.S_ISLNK(info.st_mode) and not _trusted_owner(info.st_uid):
            return f"{prefix} is a symbolic link of {_who(info.st_uid)}, who could point it elsewhere"
    real = Path(os.path.realpath(absolute))
    for prefix in [*reversed(real.parents), real]:
        try:
            info = os.stat(prefix)
        except FileNotFoundError:
            break
        if not stat.S_ISDIR(info.st_mode):
            return f"{prefix} is not a directory"
        if not _trusted_owner(info.st_uid):
            return f"{prefix} belongs to {_who(info.st_uid)}, who could replace what it holds; it must be root's"
        if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
            who = "everyone" if info.st_mode & 0o002 else "its group"
            return f"{prefix} can be written by {who} and has no sticky bit, so they could replace what it holds"
    return None


# -- the lock file --------------------------------------------------------------------------------------

_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # never a symlink; never hang on a FIFO planted there


def _open(lock_file: Path) -> tuple[int, bool]:
    """The lock file opened (made when missing, world-readable and writable), and whether it is writable.

    Raises:
        LedgerError: a lock file smimig cannot trust (see the module docstring), or cannot open.
    """
    reason = untrusted_reason(lock_file.parent)
    if reason is not None:
        raise LedgerError(str(lock_file), reason)
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)  # a simulation's cache directory, on first use
    except OSError as error:
        raise LedgerError(str(lock_file.parent), f"cannot be made: {error.strerror}") from None
    writable = True
    try:
        try:
            fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_EXCL | _FLAGS, 0o666)
            os.fchmod(fd, 0o666)  # whatever the umask: every user of the node opens it
        except FileExistsError:
            try:
                fd = os.open(lock_file, os.O_RDWR | _FLAGS)
            except PermissionError:
                fd, writable = os.open(lock_file, os.O_RDONLY | _FLAGS), False
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise LedgerError(str(lock_file), "is a symbolic link; smimig never follows one there") from None
        raise LedgerError(str(lock_file), f"cannot be opened: {error.strerror}") from None
    try:
        _check_lock_file(fd, lock_file)
    except BaseException:
        os.close(fd)
        raise
    return fd, writable


def _check_lock_file(fd: int, lock_file: Path) -> None:
    info = os.fstat(fd)
    # Extra hard links are harmless to a flock (it locks the file, whatever its names), and refusing them
    # would let any user disable every change on the node with one `ln` of the world-writable lock file.
    if not stat.S_ISREG(info.st_mode):
        raise LedgerError(str(lock_file), "is not a regular file and is not used")
    if _trusted_owner(info.st_uid):
        return
    if os.geteuid() == 0:
        os.fchown(fd, 0, 0)  # root adopts a lock file a user made first: nobody can replace it from now on
        return
    raise LedgerError(
        str(lock_file),
        f"belongs to {_who(info.st_uid)}, who could replace it and so break the lock; it must be root's "
        "(any change smimig makes as root adopts it; README: Shared nodes)",
    )


def _same_file(fd: int, lock_file: Path) -> bool:
    opened = os.fstat(fd)
    try:
        named = os.stat(lock_file, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino)


def _command_line() -> str:
    try:
        raw = Path("/proc/self/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        words = [word.decode("utf-8", "replace") for word in raw]
    except OSError:
        words = list(sys.argv)
    if words:
        words[0] = os.path.basename(words[0])
    return shlex.join(words)[:_MAX_COMMAND]


def _write_holder(fd: int) -> None:
    from datetime import datetime, timezone  # noqa: PLC0415  # only a holder writes the time

    me = holders.current()
    line = json.dumps(
        {
            "pid": me.pid,
            "start_time": me.start_time,
            "uid": me.uid,
            "user": me.user,
            "command": _command_line(),
            "since": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
        }
    )
    os.ftruncate(fd, 0)
    os.pwrite(fd, (line + "\n").encode(), 0)


def _printable(text: object, limit: int) -> str:
    return "".join(character if character.isprintable() else "?" for character in str(text))[:limit]


def lock_holder(path: str | os.PathLike[str] | None = None, *, smi: Smi | None = None) -> LockHolder | None:
    """Who holds the node lock now, as its file says; None when nobody does (or the file does not say).

    Lock-free: it only reads the file (``path``, else :func:`lock_path_for` ``smi``).
    """
    lock_file = Path(path) if path is not None else lock_path_for(smi)
    try:
        fd = os.open(lock_file, os.O_RDONLY | _FLAGS)
    except OSError:
        return None
    try:
        data = json.loads(os.read(fd, 4096).decode("utf-8", "replace") or "null")
    except ValueError:
        return None
    finally:
        os.close(fd)
    if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
        return None
    numbers = {key: data.get(key) if isinstance(data.get(key), int) else None for key in ("uid", "start_time")}
    return LockHolder(
        data["pid"],
        _printable(data.get("user", "?"), 64),
        _printable(data.get("command", "?"), _MAX_COMMAND),
        _printable(data.get("since", "?"), 40),
        **numbers,
    )


def _tell(lock_file: Path, holder: LockHolder | None) -> None:
    who = f"held by {holder}" if holder is not None else "held by a process that does not say who it is"
    sys.stderr.write(f"smimig: waiting for the node lock {lock_file}, {who}\n")
    sys.stderr.flush()


def _wait_for(fd: int, lock_file: Path, timeout: float, on_wait: OnWait | None, start: float) -> None:
    """Take the flock on ``fd``, telling ``on_wait`` once after :data:`NOTICE_AFTER` seconds.

    Raises:
        NodeLockTimeout: ``timeout`` seconds after ``start``.
    """
    told = False
    pause = 0.002
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            return
        waited = time.monotonic() - start
        if waited >= timeout:
            raise NodeLockTimeout(str(lock_file), timeout, lock_holder(lock_file))
        if not told and waited >= NOTICE_AFTER:
            told = True
            (on_wait or _tell)(lock_file, lock_holder(lock_file))
        time.sleep(min(pause, timeout - waited))
        pause = min(pause * 2, 0.05)


def _acquire(lock_file: Path, timeout: float, on_wait: OnWait | None) -> tuple[int, bool]:
    start = time.monotonic()
    while True:
        fd, writable = _open(lock_file)
        try:
            _wait_for(fd, lock_file, timeout, on_wait, start)
            if _same_file(fd, lock_file):
                if writable:
                    _write_holder(fd)
                return fd, writable
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the file was removed or replaced while we waited: lock the one there now


def _let_go(fd: int, writable: bool) -> None:
    if writable:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
    os.close(fd)  # closing the last descriptor releases the flock


# -- re-entrant holds ---------------------------------------------------------------------------------


@attrs.define(repr=False)
class _Hold(AttrsRepr):
    fd: int
    writable: bool
    thread: int
    depth: int = 1


_registry = threading.Lock()
_holds: dict[str, _Hold] = {}


def _forget_in_child() -> None:
    """A forked child holds nothing: the descriptors it inherited are closed (the parent keeps the lock)."""
    global _registry  # noqa: PLW0603  # a lock another thread held at fork() time would never be released
    _registry = threading.Lock()
    for hold in _holds.values():
        with contextlib.suppress(OSError):
            os.close(hold.fd)
    _holds.clear()


os.register_at_fork(after_in_child=_forget_in_child)


def _key(lock_file: Path) -> str:
    return os.path.abspath(lock_file)


def holding(path: str | os.PathLike[str] | None = None, *, smi: Smi | None = None) -> bool:
    """Whether this thread holds the node lock (``path``, else :func:`lock_path_for` ``smi``)."""
    lock_file = Path(path) if path is not None else lock_path_for(smi)
    with _registry:
        hold = _holds.get(_key(lock_file))
        return hold is not None and hold.thread == threading.get_ident()


@contextlib.contextmanager
def node_lock(
    timeout: float | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
    smi: Smi | None = None,
    on_wait: OnWait | None = None,
) -> Iterator[Path]:
    """Hold the node lock for the ``with`` block; yields the lock file's path.

    Args:
        timeout: seconds to wait for it (None: ``$SMIMIG_LOCK_TIMEOUT``, else 120; 0: one try).
        path: the lock file (None: :func:`lock_path_for` ``smi``).
        smi: the client whose node is locked (None: this node).
        on_wait: called once, after :data:`NOTICE_AFTER` seconds of waiting, with the lock file and who
            holds it (None: one line on stderr).

    Re-entrant: within a thread that holds it already, the block runs at once and the lock is let go
    when the outermost block ends.

    Raises:
        NodeLockTimeout: still held by someone else after ``timeout`` seconds; it names the holder.
        LedgerError: a lock file smimig cannot trust (see the module docstring).
        ValueError: a bad timeout.
    """
    seconds = _timeout(timeout)
    lock_file = Path(path) if path is not None else lock_path_for(smi)
    key, me = _key(lock_file), threading.get_ident()
    with _registry:
        mine = _holds.get(key)
        if mine is not None and mine.thread == me:
            mine.depth += 1
    if mine is not None and mine.thread == me:
        try:
            yield lock_file
        finally:
            with _registry:
                mine.depth -= 1
        return
    fd, writable = _acquire(lock_file, seconds, on_wait)
    with _registry:
        _holds[key] = _Hold(fd, writable, me)
    try:
        yield lock_file
    finally:
        with _registry:
            del _holds[key]
        _let_go(fd, writable)
