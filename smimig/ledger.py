"""The lease ledger: one file per lease beside the node lock, so a dead lease is found and nobody can forge one.

Beside the lock file (``/run/lock/smimig.lock``) is a directory, ``smimig.leases/`` (the lock's name with
``.leases`` for its suffix), holding one JSON file per lease::

    {"version": 1, "state": "held", "gpu": 0, "gi": 1, "ci": 0, "placement": [0, 1],
     "profile": "MIG 1g.5gb", "uuid": "MIG-…", "pid": 4242, "start_time": 8345021, "uid": 1001,
     "user": "alice", "boot_id": "…", "pid_ns": 4026531836, "created_at": "2025-06-12T10:15:02+02:00"}

``state`` is ``creating`` (written before ``-cgi`` runs: ``gi``, then ``ci``, filled in as they are made),
``held`` (the device is the lease's, ``uuid`` known) or ``releasing`` (written, under the lock, once a release
has checked the instances are still its own and before it destroys them; ``ci`` and ``uuid`` no longer named,
so a release killed between ``-dci`` and ``-dgi`` leaves an entry reclaim matches the GPU instance by).
Entries change only under the node lock (:mod:`smimig.locking`), each write a new file renamed over the old
one (fsynced), so a reader without the lock sees one whole version or the other. A lease whose holder no
longer runs is an orphan: :func:`smimig.leasing.reclaim` destroys its instance (after checking it is still
the same one) and removes its entry. When it may not remove the entry (another user's, the sticky bit), it
writes a *settled marker* of its own beside it, ``<entry>.settled-<uid>`` holding the entry file's inode and
modification time: that entry is then never matched against the node again (a later instance at its
placement is not its), and root's reclaim removes both. A marker, like an entry, is anyone's to write: a
forged one can only stop a reclaim.

Nobody can forge it. MIG changes need root (or ``sudo -n`` for nvidia-smi) and the ledger decides what
reclaim destroys, so the design is that no user can make smimig destroy an instance held by someone else's
live lease by writing, replacing or deleting files:

- The directory belongs to root, mode 1777 (or 1770 with a group): everyone may create entries, the sticky
  bit stops anyone from removing or renaming another user's. smimig refuses a ledger (and a lock file) in a
  directory that belongs to someone other than root or you, or that others can write without the sticky bit,
  anywhere up the path (:func:`smimig.locking.untrusted_reason`). root adopts a ledger a user made first.
- An entry's user is the file's owner (``st_uid``), never its content: an entry is trusted only when the
  uid it names owns it. Anything else in the directory is ignored and reported, never trusted: files that
  are not regular files, symbolic links (never followed), files with other hard links, garbled JSON.
- Its holder is named by pid, the process's start time, boot and pid namespace (:mod:`smimig.holders`); a
  holder whose process runs as another user than the entry's is an impostor: the entry is ignored and
  reported. A lease with a job (``smimig lease … -- CMD``) names the job too (``job_pid``,
  ``job_start_time``): the lease stays live while either runs, so killing smimig (SIGKILL) does not let a
  reclaim take the device from a job still on it.
- An instance that two entries claim (trusted or not) is never reclaimed, only reported: so a forged entry
  naming your device can at most stop a reclaim, never cause one.

What it cannot stop: an entry is a claim, so whoever can create files in the directory can write one for
an instance nobody has leased and let its holder end, and reclaim then destroys that instance (never one in
use: nvidia-smi refuses). Anyone who may run nvidia-smi as root can do as much directly; on a node where
others may not, give the directory to the group that may (mode 1770, README: Shared nodes).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import attrs

from smimig import holders
from smimig._repr import AttrsRepr
from smimig.errors import LedgerError
from smimig.geometry import Placement
from smimig.lock_paths import ledger_directory
from smimig.locking import holding, lock_path_for, untrusted_reason

if TYPE_CHECKING:
    from smimig.client import Smi

__all__ = ["Claim", "LeaseRecord", "LeaseState", "Ledger", "LedgerView", "ledger_dir", "live_leases"]

LeaseState = Literal["creating", "held", "releasing"]
"""Where a lease is in its life (see the module docstring)."""

_VERSION = 1
_MAX_ENTRY = 16384  # bytes: an entry is a few hundred; anything bigger is not one


@attrs.frozen(repr=False)
class LeaseRecord(AttrsRepr):
    """One trusted entry of the ledger: where the leased device is, who holds it and whether they still run.

    ``gi``, ``ci`` and ``uuid`` are None while the lease is being created; ``alive`` is False for an orphan.
    """

    gpu: int
    gi: int | None
    ci: int | None
    profile: str
    placement: Placement
    uuid: str | None
    user: str
    pid: int
    alive: bool
    state: LeaseState
    created_at: str
    uid: int
    start_time: int | None
    boot_id: str | None
    entry: str
    pid_ns: int | None = None
    settled: bool = False
    """An earlier reclaim settled this orphan (destroyed its instance, or found it gone or replaced) but could
    not remove its entry (another user's, the sticky bit): no reclaim acts on it again; root's removes it."""
    job_pid: int | None = None
    """The lease's job (``smimig lease … -- CMD``): while it runs the lease is live (``alive``) even if its
    holder is gone, so no reclaim takes the device from under it."""

    @property
    def where(self) -> str:
        """``GPU 0 GI 1 CI 0 (MIG 1g.5gb at 0:1, MIG-…)``: the device, as far as it was made."""
        ids = f"GPU {self.gpu}" + (f" GI {self.gi}" if self.gi is not None else "")
        ids += f" CI {self.ci}" if self.ci is not None else ""
        uuid = f", {self.uuid}" if self.uuid else ""
        return f"{ids} ({self.profile} at {self.placement}{uuid})"

    def __str__(self) -> str:
        being = "" if self.state == "held" else f" [{self.state}]"
        running = "" if self.alive else ", no longer running" + (", settled" if self.settled else "")
        job = f", job PID {self.job_pid}" if self.job_pid is not None else ""
        return f"{self.where}{being} leased by {self.user} (PID {self.pid}{job}{running}) at {self.created_at}"


@attrs.frozen(repr=False)
class Claim(AttrsRepr):
    """An entry's claim on a GPU instance (or, before ``-cgi`` answered, on a placement), trusted or not."""

    gpu: int
    gi: int | None
    placement: Placement
    entry: str


@attrs.frozen(repr=False)
class LedgerView(AttrsRepr):
    """The ledger as read at one moment: trusted records, the files ignored (and why), every claim."""

    directory: str
    records: tuple[LeaseRecord, ...] = ()
    problems: tuple[str, ...] = ()
    claims: tuple[Claim, ...] = ()
    stale_markers: tuple[str, ...] = ()
    """Settled markers whose entry is gone (root's reclaim or its owner removed it): clutter to remove."""

    def claimants(self, gpu: int, gi: int) -> tuple[str, ...]:
        """The entries (trusted or not) that claim GPU instance ``gi`` of GPU ``gpu``."""
        return tuple(claim.entry for claim in self.claims if (claim.gpu, claim.gi) == (gpu, gi))

    def doubly_claimed(self) -> dict[tuple[int, int], tuple[str, ...]]:
        """Each GPU instance claimed by more than one entry, with those entries."""
        seen: dict[tuple[int, int], list[str]] = {}
        for claim in self.claims:
            if claim.gi is not None:
                seen.setdefault((claim.gpu, claim.gi), []).append(claim.entry)
        return {key: tuple(entries) for key, entries in seen.items() if len(entries) > 1}


def ledger_dir(lock_file: str | os.PathLike[str]) -> Path:
    """The ledger directory beside ``lock_file``: ``/run/lock/smimig.lock`` -> ``/run/lock/smimig.leases``
    (:func:`smimig.lock_paths.ledger_directory`)."""
    return Path(ledger_directory(lock_file))


# -- reading ------------------------------------------------------------------------------------------


_PID_MAX = 2**22  # the kernel's largest pid_max (4194304): a pid past it is no process's


def _safe(path: Path) -> str:
    """A file name as it may be shown on a terminal: anyone can name an entry, so escapes are spelled out."""
    return "".join(character if character.isprintable() else repr(character)[1:-1] for character in str(path))


def _natural(value: object) -> bool:
    # Bounded: a number of 10^23 is nothing an entry records, and would overflow C on its way to the kernel.
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**62


def _text(value: object, limit: int = 200) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit and value.isprintable()


def _problem_in(data: object) -> str | None:
    """What is wrong with an entry's JSON, or None."""
    if not isinstance(data, dict) or data.get("version") != _VERSION:
        return f"not a version {_VERSION} lease entry"
    checks = {
        "gpu": _natural(data.get("gpu")),
        "gi": data.get("gi") is None or _natural(data.get("gi")),
        "ci": data.get("ci") is None or _natural(data.get("ci")),
        "placement": isinstance(data.get("placement"), list)
        and len(data["placement"]) == 2
        and all(_natural(part) for part in data["placement"]),
        "profile": _text(data.get("profile")),
        "uuid": data.get("uuid") is None or _text(data.get("uuid")),
        "pid": _natural(data.get("pid")) and 0 < data["pid"] <= _PID_MAX,
        "start_time": data.get("start_time") is None or _natural(data.get("start_time")),
        "uid": _natural(data.get("uid")),
        "user": _text(data.get("user"), 64),
        "boot_id": data.get("boot_id") is None or _text(data.get("boot_id"), 64),
        "pid_ns": data.get("pid_ns") is None or _natural(data.get("pid_ns")),
        "created_at": _text(data.get("created_at"), 64),
        "job_pid": data.get("job_pid") is None or (_natural(data.get("job_pid")) and 0 < data["job_pid"] <= _PID_MAX),
        "job_start_time": data.get("job_start_time") is None or _natural(data.get("job_start_time")),
        "state": data.get("state") in get_args(LeaseState),
    }
    wrong = [name for name, ok in checks.items() if not ok]
    return f"bad or missing {', '.join(wrong)}" if wrong else None


def _load(path: Path) -> tuple[dict[str, Any] | None, int, str | None, tuple[int, int]]:
    """An entry's data, its file's owner, why it is not one (the data is then None), and which file it is
    (inode and modification time, as a settled marker names it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        return None, -1, f"cannot be read ({error.strerror})", (0, 0)
    try:
        info = os.fstat(fd)
        identity = (info.st_ino, info.st_mtime_ns)
        if not stat.S_ISREG(info.st_mode):
            return None, info.st_uid, "not a regular file", identity
        if info.st_nlink != 1:
            return None, info.st_uid, "has other hard links", identity
        raw = os.read(fd, _MAX_ENTRY + 1)
    finally:
        os.close(fd)
    if len(raw) > _MAX_ENTRY:
        return None, info.st_uid, "too big to be a lease entry", identity
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # RecursionError: '[' * 8000, well under the size cap
        return None, info.st_uid, "not JSON", identity
    problem = _problem_in(data)
    return (None, info.st_uid, problem, identity) if problem else (data, info.st_uid, None, identity)


_SETTLED = ".settled-"
"""A settled marker is named ``<entry's name>.settled-<uid of who settled it>``."""


def _settled_identity(path: Path) -> tuple[int, int] | None:
    """The entry file a settled marker names (inode, modification time), or None if it is not one."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        raw = os.read(fd, 257)
    finally:
        os.close(fd)
    try:
        data = json.loads(raw.decode("utf-8")) if len(raw) <= 256 else None
    except (ValueError, RecursionError):
        return None
    if isinstance(data, dict) and _natural(data.get("inode")) and _natural(data.get("mtime_ns")):
        return data["inode"], data["mtime_ns"]
    return None


def _record(data: Mapping[str, Any], entry: Path, alive: bool, settled: bool) -> LeaseRecord:
    return LeaseRecord(
        gpu=data["gpu"],
        gi=data["gi"],
        ci=data["ci"],
        profile=data["profile"],
        placement=Placement(*data["placement"]),
        uuid=data["uuid"],
        user=data["user"],
        pid=data["pid"],
        alive=alive,
        state=data["state"],
        created_at=data["created_at"],
        uid=data["uid"],
        start_time=data["start_time"],
        boot_id=data["boot_id"],
        entry=str(entry),
        pid_ns=data.get("pid_ns"),
        settled=settled,
        job_pid=data.get("job_pid"),
    )


@attrs.frozen(repr=False)
class Ledger(AttrsRepr):
    """The ledger that sits beside ``lock_file``. Reading needs no lock; every change needs the node lock."""

    lock_file: Path = attrs.field(converter=Path)

    @property
    def directory(self) -> Path:
        return ledger_dir(self.lock_file)

    def _directory_problem(self, *, adopt: bool) -> str | None:  # noqa: PLR0911  # one return per verdict
        """Why the directory cannot be trusted, None when it can (or does not exist yet)."""
        directory = self.directory
        reason = untrusted_reason(directory.parent)
        if reason is not None:
            return reason
        try:
            info = os.lstat(directory)
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
            return "is not a directory (a symbolic link is never followed there)"
        me = os.geteuid()
        if info.st_uid in (0, me) and not (info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX):
            return None
        if adopt and me == 0:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                os.fchown(fd, 0, -1)  # root adopts a ledger a user made first (its entries stay theirs)
                if info.st_mode & 0o022:
                    os.fchmod(fd, stat.S_IMODE(info.st_mode) | stat.S_ISVTX)
                else:  # one only its maker could write (mkdir -m 700): everyone's again, as smimig makes it
                    os.fchmod(fd, 0o1777)  # world-writable on purpose, with the sticky bit
            finally:
                os.close(fd)
            return None
        if info.st_uid not in (0, me):
            return (
                f"belongs to {holders.user_name(info.st_uid)} (uid {info.st_uid}), who could remove anyone's "
                "lease entries; it must be root's (any change smimig makes as root adopts it; README: Shared nodes)"
            )
        return "can be written by others and has no sticky bit, so they could remove anyone's lease entries"

    def adopt(self) -> None:
        """As root, under the node lock: take over a ledger directory a user made first (root's, sticky), so
        that what follows can read it; what changes the node calls this before it reads. Nothing for anyone
        else, or with no directory.

        Raises:
            RuntimeError: the node lock is not held by this thread.
            LedgerError: the directory cannot be trusted even so (a symbolic link, an untrusted parent).
        """
        self._check_locked()
        if os.geteuid() == 0 and os.path.lexists(self.directory):
            problem = self._directory_problem(adopt=True)
            if problem is not None:
                raise LedgerError(str(self.directory), problem)

    def read(self) -> LedgerView:
        """Every entry, judged (see the module docstring); lock-free. No directory yet: an empty view.

        Raises:
            LedgerError: the directory cannot be trusted, or read.
        """
        directory = self.directory
        problem = self._directory_problem(adopt=False)
        if problem is not None:
            raise LedgerError(str(directory), problem)
        try:
            names = sorted(os.listdir(directory))
        except FileNotFoundError:
            return LedgerView(str(directory))
        except OSError as error:
            raise LedgerError(str(directory), f"cannot be read: {error.strerror}") from None
        records, problems, claims = [], [], []
        markers: dict[str, list[str]] = {}  # entry name -> its settled markers
        marker_names: set[str] = set()
        for name in names:
            entry_name, settled_mark, _ = name.partition(_SETTLED)
            if settled_mark and entry_name.endswith(".json") and not name.startswith("."):
                markers.setdefault(entry_name, []).append(name)
                marker_names.add(name)
        listed = set(names)
        for name in names:
            if name.startswith(".") or name in marker_names:
                continue  # a write in progress (or left by one that was killed), or a marker: never an entry
            path = directory / name
            if not name.endswith(".json"):
                problems.append(f"{_safe(path)}: not a lease entry (ignored)")
                continue
            data, owner, problem, identity = _load(path)
            if data is None:
                problems.append(f"{_safe(path)}: {problem} (ignored)")
                continue
            claims.append(Claim(data["gpu"], data["gi"], Placement(*data["placement"]), str(path)))
            if owner != data["uid"]:
                problems.append(
                    f"{_safe(path)}: names {data['user']} (uid {data['uid']}) but belongs to "
                    f"{holders.user_name(owner)} (uid {owner}) (ignored)"
                )
                continue
            state = holders.state(data["pid"], data["start_time"], data["uid"], data["boot_id"], data.get("pid_ns"))
            if state == "impostor":
                problems.append(
                    f"{_safe(path)}: its holder PID {data['pid']} runs as another user than {data['user']} (ignored)"
                )
                continue
            alive = state == "running" or (
                # its job still runs (its holder killed, say): the device is still in use
                data.get("job_pid") is not None
                and holders.state(
                    data["job_pid"], data.get("job_start_time"), data["uid"], data["boot_id"], data.get("pid_ns")
                )
                == "running"
            )
            # Settled by an earlier reclaim that could not remove it: a marker (anyone's: a forged one can only
            # stop a reclaim) that names this very file, not an entry written later under the same name.
            settled = not alive and any(
                _settled_identity(directory / marker) == identity for marker in markers.get(name, ())
            )
            if settled:
                claims.pop()  # its instance is no longer on the node: it claims nothing a new one could be
            records.append(_record(data, path, alive=alive, settled=settled))
        stale = tuple(
            str(directory / marker)
            for entry_name, found in markers.items()
            if entry_name not in listed
            for marker in found
        )
        return LedgerView(str(directory), tuple(records), tuple(problems), tuple(claims), stale)

    # -- changes (under the node lock) ------------------------------------------------------------------

    def _check_locked(self) -> None:
        if not holding(self.lock_file):
            raise RuntimeError(f"the lease ledger changes only under the node lock ({self.lock_file})")

    def _prepare(self) -> Path:
        directory = self.directory
        problem = self._directory_problem(adopt=True)
        if problem is not None:
            raise LedgerError(str(directory), problem)
        if not directory.exists():
            with contextlib.suppress(FileExistsError):
                os.mkdir(directory, 0o700)
                # sticky: everyone adds their own entries, nobody removes or renames another's
                os.chmod(directory, 0o1777)  # noqa: S103  # world-writable on purpose, with the sticky bit
            problem = self._directory_problem(adopt=True)
            if problem is not None:
                raise LedgerError(str(directory), problem)
        return directory

    def write(self, fields: Mapping[str, Any], entry: Path | None = None) -> Path:
        """Write an entry (a new one, or ``entry`` replaced): ``fields`` holds every key but the holder's,
        which are this process's. Returns its path.

        Raises:
            RuntimeError: the node lock is not held by this thread.
            LedgerError: the directory cannot be trusted, or the entry cannot be written.
        """
        # Only a writer needs these; smimig status reads the ledger at every start (issue 17).
        import secrets  # noqa: PLC0415
        from datetime import datetime, timezone  # noqa: PLC0415

        self._check_locked()
        directory = self._prepare()
        me = holders.current()
        data = {
            "version": _VERSION,
            **fields,
            "pid": me.pid,
            "start_time": me.start_time,
            "uid": me.uid,
            "user": me.user,
            "boot_id": me.boot_id,
            "pid_ns": me.pid_ns,
        }
        data.setdefault("created_at", datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"))
        problem = _problem_in(data)
        if problem is not None:
            raise ValueError(f"not a lease entry: {problem}")
        target = entry if entry is not None else directory / f"lease-{me.uid}-{me.pid}-{secrets.token_hex(6)}.json"
        _replace_with_json(directory, target, data, "cannot be written")
        return target

    def remove(self, entry: str | os.PathLike[str]) -> None:
        """Remove an entry (already gone: fine), and this user's settled marker of it.

        Raises:
            RuntimeError: the node lock is not held by this thread.
            LedgerError: it is another user's and this process is not root (the sticky bit).
        """
        self._check_locked()
        path = Path(entry)
        if path.parent != self.directory:
            raise ValueError(f"{path} is not an entry of the ledger {self.directory}")
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as error:
            raise LedgerError(
                str(path), f"cannot be removed ({error.strerror}): another user's entry; root's reclaim removes it"
            ) from None
        # Its marker of this user's (another's is left: reclaim removes it with the stale ones, in one listing).
        self.remove_marker(self.directory / f"{path.name}{_SETTLED}{os.geteuid()}")
        _sync_directory(self.directory)

    def update(self, entry: str | os.PathLike[str], **changes: object) -> None:
        """Rewrite this process's entry with ``changes`` (the lease's job, say), the rest as it stands.

        Raises:
            RuntimeError: the node lock is not held by this thread.
            LedgerError: the entry cannot be read as one, or written.
        """
        path = Path(entry)
        if path.parent != self.directory:
            raise ValueError(f"{path} is not an entry of the ledger {self.directory}")
        data, _, problem, _ = _load(path)
        if data is None:
            raise LedgerError(str(path), f"cannot be updated: {problem}")
        self.write({**data, **changes}, path)

    def mark_settled(self, entry: str | os.PathLike[str]) -> None:
        """Mark an orphan's entry settled when it cannot be removed (another user's): its instance was destroyed,
        or found gone or replaced, so no later reclaim may match it against whatever instance takes that id
        or placement next. The marker is this user's own file and names the entry file by inode and
        modification time.

        Raises:
            RuntimeError: the node lock is not held by this thread.
            LedgerError: the marker cannot be written.
        """
        self._check_locked()
        path = Path(entry)
        if path.parent != self.directory:
            raise ValueError(f"{path} is not an entry of the ledger {self.directory}")
        try:
            info = os.stat(path, follow_symlinks=False)
        except OSError as error:
            raise LedgerError(str(path), f"cannot be marked settled: {error.strerror}") from None
        marker = self.directory / f"{path.name}{_SETTLED}{os.geteuid()}"
        _replace_with_json(
            self.directory, marker, {"inode": info.st_ino, "mtime_ns": info.st_mtime_ns}, "cannot be written"
        )

    def remove_marker(self, marker: str | os.PathLike[str]) -> bool:
        """Remove a settled marker if this process may (its own, or any as root); whether it went."""
        self._check_locked()
        path = Path(marker)
        if path.parent != self.directory or _SETTLED not in path.name:
            raise ValueError(f"{path} is not a settled marker of the ledger {self.directory}")
        try:
            path.unlink()
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return True


def _replace_with_json(directory: Path, target: Path, data: object, failure: str) -> None:
    """Write ``data`` as JSON to a new file in ``directory`` (0644: everyone reads the ledger, only its writer
    changes a file; fsynced), renamed over ``target``: a reader sees one whole version or the other.

    Raises:
        LedgerError: it cannot be written (``failure`` and the system's reason).
    """
    import tempfile  # noqa: PLC0415  # only a writer needs it; smimig status reads the ledger at every start

    try:
        handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=directory)
    except OSError as error:
        raise LedgerError(str(directory), f"{failure}: {error.strerror}") from None
    try:
        os.fchmod(handle, 0o644)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(data, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise LedgerError(str(target), f"{failure}: {error.strerror}") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _sync_directory(directory)


def _sync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def live_leases(smi: Smi | None = None, *, lock_path: str | os.PathLike[str] | None = None) -> list[LeaseRecord]:
    """The leases whose holders still run (being created, held or being released), from the ledger beside
    the node lock (``lock_path``, else :func:`smimig.locking.lock_path_for` ``smi``). Lock-free.

    Raises:
        LedgerError: the ledger cannot be trusted.
    """
    lock_file = Path(lock_path) if lock_path is not None else lock_path_for(smi)
    return [record for record in Ledger(lock_file).read().records if record.alive]
