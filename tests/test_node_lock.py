"""The node lock: one lock for every change, a file that says who holds it, a wait that says whom it waits for."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import smimig
from smimig import cli, locking
from smimig.errors import LedgerError, NodeLockTimeout
from smimig.exit_codes import ExitCode, explain
from smimig.locking import LockHolder, holding, lock_holder, node_lock


@pytest.fixture
def lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "smimig.lock"
    monkeypatch.setenv("SMIMIG_LOCK_FILE", str(path))
    monkeypatch.setattr(locking, "NOTICE_AFTER", 0.01)  # tell a waiter at once, not after a second
    return path


class Holding:
    """Another thread holds the lock at ``path`` until :meth:`release`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.held, self.done = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold, daemon=True)
        self.thread.start()
        assert self.held.wait(10)

    def _hold(self) -> None:
        with node_lock(path=self.path, timeout=10):
            self.held.set()
            self.done.wait(30)

    def release(self) -> None:
        self.done.set()
        self.thread.join(10)


@pytest.fixture
def held_elsewhere(lock: Path) -> Iterator[Holding]:
    holder = Holding(lock)
    yield holder
    holder.release()


def test_the_lock_file_says_who_holds_it_then_nothing(lock: Path) -> None:
    with node_lock() as path:
        assert path == lock
        data = json.loads(lock.read_text())
        assert (data["pid"], data["uid"]) == (os.getpid(), os.geteuid())
        assert set(data) == {"pid", "start_time", "uid", "user", "command", "since"}
        assert "pytest" in data["command"] or "python" in data["command"]
        holder = lock_holder()
        assert isinstance(holder, LockHolder)
        assert holder.pid == os.getpid()
        assert str(holder).startswith(f"PID {os.getpid()} (")
        assert holding()
    assert lock.read_text() == ""
    assert lock_holder() is None
    assert not holding()
    assert lock.stat().st_mode & 0o777 == 0o666  # every user of the node opens it


def test_a_waiter_is_told_who_holds_it_and_a_timeout_names_them(lock: Path, held_elsewhere: Holding) -> None:
    told: list[tuple[Path, LockHolder | None]] = []
    with pytest.raises(NodeLockTimeout) as caught, node_lock(timeout=0.05, on_wait=lambda *seen: told.append(seen)):
        pass
    assert len(told) == 1  # once, after NOTICE_AFTER
    ((path, holder),) = told
    assert path == lock
    assert holder is not None
    assert holder.pid == os.getpid()
    assert caught.value.holder == holder
    assert caught.value.path == str(lock)
    assert str(caught.value).startswith(f"the node lock {lock} was still held after 0.05 s, by PID {os.getpid()} (")
    assert str(caught.value).endswith("nothing was changed")
    assert lock_holder() == holder  # waiting never wiped the holder's line (filelock 3 would have: O_TRUNC)


def test_the_default_notice_is_one_line_on_stderr(
    lock: Path, held_elsewhere: Holding, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(NodeLockTimeout), node_lock(timeout=0.05):
        pass
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"smimig: waiting for the node lock {lock}, held by PID {os.getpid()} (")


def test_it_is_reentrant_within_a_thread(lock: Path) -> None:
    with node_lock(timeout=0):
        before = lock.read_text()
        with node_lock(timeout=0), smimig.Smi().node_lock(timeout=0):
            assert holding()
        assert holding()  # the inner blocks did not let go
        assert lock.read_text() == before


def test_other_threads_wait_as_other_processes_do(lock: Path, held_elsewhere: Holding) -> None:
    with pytest.raises(NodeLockTimeout), node_lock(timeout=0):
        pass
    assert not holding()
    held_elsewhere.release()
    with node_lock(timeout=5):
        assert holding()


def test_another_process_is_named_with_its_command_line(lock: Path) -> None:
    code = "import sys, smimig.locking as l\nwith l.node_lock():\n    print('held', flush=True); sys.stdin.read()"
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "held\n"
        with pytest.raises(NodeLockTimeout) as caught, node_lock(timeout=0.02, on_wait=lambda *_: None):
            pass
        assert caught.value.holder is not None
        assert caught.value.holder.pid == child.pid
        assert caught.value.holder.command.startswith("python")
        assert "node_lock" in caught.value.holder.command
    finally:
        child.communicate("", timeout=10)
    with node_lock(timeout=5):  # the child is gone, and so is its lock
        pass


def test_a_timeout_exits_3_naming_the_holder(lock: Path, held_elsewhere: Holding) -> None:
    with pytest.raises(NodeLockTimeout) as caught, node_lock(timeout=0, on_wait=lambda *_: None):
        pass
    code, lines = explain(caught.value)
    assert code == ExitCode.NVIDIA_SMI  # 3: nothing was changed
    assert lines[0].startswith(f"smimig: the node lock {lock} was still held after 0 s, by PID {os.getpid()}")


@pytest.mark.parametrize(
    "args",
    [
        ["mode", "on", "-i", "0"],
        ["create-gi", "1g.6gb", "-i", "0", "-C"],
        ["create-ci", "--gi", "1", "-i", "0"],
        ["destroy-ci", "-i", "0"],
        ["destroy-gi", "-i", "0"],
    ],
)
def test_the_cli_changes_wait_for_the_lock_and_reads_do_not(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("SMIMIG_LOCK_TIMEOUT", "0.05")
    monkeypatch.setattr(locking, "NOTICE_AFTER", 0.01)
    simulate = ["--simulate", "A30x1"]
    assert cli.main([*simulate, "mode", "on", "-i", "0"], io.StringIO(), io.StringIO()) == 0
    # a simulated node's lock sits beside its state file, never at the node's own
    holder = Holding(tmp_path / "cache" / "smimig" / "simulate-A30x1.json.node.lock")
    try:
        err = io.StringIO()
        assert cli.main([*simulate, *args], io.StringIO(), err) == ExitCode.NVIDIA_SMI
        assert f"was still held after 0.05 s, by PID {os.getpid()}" in err.getvalue()
        assert "smimig: waiting for the node lock" in capfd.readouterr().err
        assert cli.main([*simulate, "gis"], io.StringIO(), io.StringIO()) == 0  # reads never wait
    finally:
        holder.release()


# -- who may own the lock file ------------------------------------------------------------------------


def test_a_symbolic_link_is_never_followed(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").write_text("")
    (tmp_path / "smimig.lock").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(LedgerError, match="symbolic link"), node_lock(path=tmp_path / "smimig.lock", timeout=0):
        pass


def test_a_directory_others_may_write_needs_the_sticky_bit(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    refused = pytest.raises(LedgerError, match="can be written by everyone and has no sticky bit")
    with refused as caught, node_lock(path=shared / "smimig.lock", timeout=0):
        pass
    assert explain(caught.value)[0] == ExitCode.REFUSED
    shared.chmod(0o1777)
    with node_lock(path=shared / "smimig.lock", timeout=0):
        pass
    (tmp_path / "group").mkdir()
    (tmp_path / "group").chmod(0o770)
    with pytest.raises(LedgerError, match="its group"), node_lock(path=tmp_path / "group" / "x" / "l", timeout=0):
        pass


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root: it gives a file away")
def test_root_adopts_a_lock_file_a_user_made_first(tmp_path: Path) -> None:
    made = tmp_path / "smimig.lock"
    made.write_text("")
    os.chown(made, 65534, 65534)
    with node_lock(path=made, timeout=0):
        assert made.stat().st_uid == 0  # nobody else can replace it from now on


def test_a_forked_child_holds_nothing(lock: Path) -> None:
    with node_lock():
        pid = os.fork()
        if pid == 0:  # the child: it must not believe it holds the parent's lock
            os._exit(0 if not holding() else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert holding()


# -- where the lock lives: the same file for root and every user --------------------------------------------


@pytest.mark.parametrize(
    ("run_lock", "expected"),
    [
        ("missing", "tmp"),
        ("0755", "tmp"),  # Fedora, RHEL, Arch: root's alone, so nobody's (root would otherwise lock alone)
        ("0755 with the lock made at boot", "run"),  # README's tmpfiles set-up
        ("1777", "run"),  # Debian, Ubuntu
    ],
)
@pytest.mark.parametrize("may_write", [True, False], ids=["as root", "as a user"])
def test_root_and_users_resolve_one_lock_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_lock: str, expected: str, may_write: bool
) -> None:
    from smimig import lock_paths  # noqa: PLC0415

    run, shared_tmp = tmp_path / "run-lock", tmp_path / "tmp"
    shared_tmp.mkdir()
    if run_lock != "missing":
        run.mkdir()
        run.chmod(0o1777 if run_lock == "1777" else 0o755)
        if "made at boot" in run_lock:
            (run / "smimig.lock").touch(0o660)
    monkeypatch.setattr(lock_paths, "_RUN_LOCK", str(run))
    monkeypatch.setattr(lock_paths, "_SHARED_TMP", str(shared_tmp))
    monkeypatch.delenv(lock_paths.LOCK_ENV)
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: may_write)  # who asks must not matter
    answer = lock_paths.default_lock_file()
    assert answer == str((run if expected == "run" else shared_tmp) / "smimig.lock")
    monkeypatch.setenv(lock_paths.LOCK_ENV, str(tmp_path / "mine.lock"))
    assert lock_paths.default_lock_file() == str(tmp_path / "mine.lock")
