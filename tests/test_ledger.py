"""The lease ledger: one file per lease, trusted by its owner and its holder, never by what it says."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest

from smimig import holders
from smimig.errors import LedgerError
from smimig.ledger import Ledger, ledger_dir, live_leases
from smimig.locking import node_lock

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

FIELDS: dict[str, Any] = {
    "state": "held",
    "gpu": 0,
    "gi": 1,
    "ci": 0,
    "placement": [0, 1],
    "profile": "MIG 1g.5gb",
    "uuid": "MIG-5fc9d5ba-a884-5de5-8042-67360d507353",
}


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "smimig.lock")


def write(ledger: Ledger, **changes: Any) -> Path:
    with node_lock(path=ledger.lock_file, timeout=5):
        return ledger.write({**FIELDS, **changes})


def rewrite(entry: Path, **changes: Any) -> None:
    """Change what an entry says, keeping its file (and so its owner)."""
    data = json.loads(entry.read_text())
    data.update(changes)
    entry.write_text(json.dumps(data))


def gone_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_an_entry_is_written_beside_the_lock_and_read_back(ledger: Ledger) -> None:
    assert ledger.directory == ledger_dir(ledger.lock_file) == ledger.lock_file.with_name("smimig.leases")
    entry = write(ledger)
    info = ledger.directory.stat()
    assert stat.S_IMODE(info.st_mode) == 0o1777  # everyone adds entries; the sticky bit keeps them theirs
    assert stat.S_IMODE(entry.stat().st_mode) == 0o644
    assert entry.name.startswith(f"lease-{os.geteuid()}-{os.getpid()}-")
    assert [name for name in os.listdir(ledger.directory) if name.startswith(".")] == []  # no temporary left
    (record,) = ledger.read().records
    me = holders.current()
    assert (record.gpu, record.gi, record.ci, record.profile, str(record.placement), record.uuid) == (
        0,
        1,
        0,
        "MIG 1g.5gb",
        "0:1",
        FIELDS["uuid"],
    )
    assert (record.pid, record.start_time, record.uid, record.user, record.boot_id) == (
        me.pid,
        me.start_time,
        me.uid,
        me.user,
        me.boot_id,
    )
    assert record.alive
    assert record.entry == str(entry)
    assert str(record).startswith("GPU 0 GI 1 CI 0 (MIG 1g.5gb at 0:1, MIG-5fc9d5ba-")
    assert f"leased by {me.user} (PID {me.pid}) at " in str(record)
    assert live_leases(lock_path=ledger.lock_file) == [record]
    with node_lock(path=ledger.lock_file):
        ledger.remove(entry)
        ledger.remove(entry)  # gone already: fine
    assert ledger.read().records == ()


def test_changes_need_the_node_lock(ledger: Ledger) -> None:
    with pytest.raises(RuntimeError, match="only under the node lock"):
        ledger.write(FIELDS)
    entry = write(ledger)
    with pytest.raises(RuntimeError, match="only under the node lock"):
        ledger.remove(entry)


def test_no_directory_yet_is_an_empty_ledger(ledger: Ledger) -> None:
    view = ledger.read()
    assert (view.records, view.problems, view.claims) == ((), (), ())
    assert not ledger.directory.exists()  # reading never makes it


def test_a_holder_that_is_gone_makes_an_orphan(ledger: Ledger) -> None:
    reused = write(ledger, gi=1)
    exited = write(ledger, gi=2)
    rebooted = write(ledger, gi=3)
    live = write(ledger, gi=4)
    rewrite(reused, start_time=1)  # this pid, but a process that started at another time
    rewrite(exited, pid=gone_pid())
    rewrite(rebooted, boot_id="another-boot")
    alive = {record.gi: record.alive for record in ledger.read().records}
    assert alive == {1: False, 2: False, 3: False, 4: True}
    assert [record.gi for record in live_leases(lock_path=ledger.lock_file)] == [4]
    assert live.exists()


def test_a_holder_in_another_pid_namespace_is_never_taken_for_gone(ledger: Ledger) -> None:
    entry = write(ledger)
    rewrite(entry, pid=gone_pid(), pid_ns=(holders.pid_namespace() or 0) + 1)  # a container's pid: not ours
    (record,) = ledger.read().records
    assert record.alive


def test_a_zombie_holder_is_gone() -> None:
    process = subprocess.Popen(["true"])
    started = holders.start_time(process.pid)
    while holders.state(process.pid, started, os.geteuid(), None) == "running":
        pass  # until it has exited (and not been collected: a zombie)
    assert holders.state(process.pid, started, os.geteuid(), None) == "gone"
    process.wait()


def test_files_that_are_not_entries_are_ignored_and_reported(ledger: Ledger) -> None:
    entry = write(ledger)
    directory = ledger.directory
    (directory / "garbled.json").write_text("{not json")
    (directory / "fields.json").write_text(json.dumps({"version": 1, "gpu": -1}))
    (directory / "notes.txt").write_text("hello")
    (directory / "link.json").symlink_to(entry)
    (directory / "dir.json").mkdir()
    os.mkfifo(directory / "fifo.json")
    os.link(entry, directory / "hardlink.json")
    (directory / ".tmp-123.json").write_text("a write in progress: skipped silently")
    view = ledger.read()
    assert view.records == ()  # the hard link makes even the real entry untrusted
    problems = sorted(problem.replace(f"{directory}/", "") for problem in view.problems)
    assert problems == [
        "dir.json: not a regular file (ignored)",
        "fields.json: bad or missing gpu, placement, profile, pid, uid, user, created_at, state (ignored)",
        "fifo.json: not a regular file (ignored)",
        "garbled.json: not JSON (ignored)",
        "hardlink.json: has other hard links (ignored)",
        f"{entry.name}: has other hard links (ignored)",
        "link.json: cannot be read (Too many levels of symbolic links) (ignored)",
        "notes.txt: not a lease entry (ignored)",
    ]


def test_an_entry_is_its_owners_whatever_it_says(ledger: Ledger) -> None:
    entry = write(ledger)
    other = 65534 if os.geteuid() != 65534 else 65533
    rewrite(entry, uid=other, user="someone")
    view = ledger.read()
    assert view.records == ()
    (problem,) = view.problems
    assert problem.endswith(
        f"names someone (uid {other}) but belongs to {holders.current().user} (uid {os.geteuid()}) (ignored)"
    )
    assert [claim.entry for claim in view.claims] == [
        str(entry)
    ]  # still a claim: it can stop a reclaim, never cause one


def test_an_entry_naming_someone_elses_process_is_an_impostor(ledger: Ledger) -> None:
    entry = write(ledger)
    if ROOT and shutil.which("setpriv"):
        other = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sleep", "30"])
        pid = other.pid
        while holders.state(pid, holders.start_time(pid), 65534, None) != "running":
            pass  # until setpriv has dropped to nobody
    elif not ROOT:
        other, pid = None, 1  # init runs as root, not as you
    else:
        pytest.skip("needs setpriv to start a process as another user")
    try:
        rewrite(entry, pid=pid, start_time=holders.start_time(pid))
        view = ledger.read()
        assert view.records == ()
        assert view.problems == (
            f"{entry}: its holder PID {pid} runs as another user than {holders.current().user} (ignored)",
        )
    finally:
        if other is not None:
            other.kill()
            other.wait()


def test_an_instance_two_entries_claim(ledger: Ledger) -> None:
    first = write(ledger, gi=3)
    second = write(ledger, gi=3)
    write(ledger, gi=4)
    doubles = ledger.read().doubly_claimed()
    assert list(doubles) == [(0, 3)]
    assert sorted(doubles[(0, 3)]) == sorted([str(first), str(second)])


# -- who may own the directory --------------------------------------------------------------------------


def test_a_directory_others_may_write_without_the_sticky_bit_is_refused(ledger: Ledger) -> None:
    write(ledger)
    ledger.directory.chmod(0o777)
    with pytest.raises(LedgerError, match="no sticky bit, so they could remove anyone's lease entries"):
        ledger.read()
    ledger.directory.chmod(0o1770)  # a lab group, sticky: fine
    assert len(ledger.read().records) == 1


def test_a_directory_up_the_path_others_may_write_is_refused(tmp_path: Path) -> None:
    (tmp_path / "open").mkdir()
    (tmp_path / "open").chmod(0o777)
    ledger = Ledger(tmp_path / "open" / "inner" / "smimig.lock")
    with pytest.raises(LedgerError, match=r"open can be written by everyone and has no sticky bit"):
        ledger.read()


def test_a_symbolic_link_for_the_directory_is_refused(ledger: Ledger, tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    ledger.directory.symlink_to(tmp_path / "real")
    with pytest.raises(LedgerError, match="symbolic link is never followed"):
        ledger.read()


@pytest.mark.skipif(not ROOT, reason="needs root: it gives a directory away")
def test_root_adopts_a_directory_a_user_made_first(ledger: Ledger) -> None:
    ledger.directory.mkdir()
    ledger.directory.chmod(0o777)
    os.chown(ledger.directory, 65534, 65534)
    with pytest.raises(LedgerError, match=r"belongs to \S+ \(uid 65534\), who could remove anyone's lease entries"):
        ledger.read()  # reading judges; only a change adopts
    write(ledger)
    info = ledger.directory.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode) & stat.S_ISVTX) == (0, stat.S_ISVTX)
    assert len(ledger.read().records) == 1


@pytest.mark.skipif(not ROOT, reason="needs root: it gives a directory away")
@pytest.mark.parametrize("mode", [0o1777, 0o700])
def test_roots_reclaim_lease_and_apply_adopt_a_directory_a_user_made_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    # Found by review: each of them read the ledger before anything wrote it, and reading refuses a directory
    # root does not own: root could never adopt one, and a user's 'mkdir -m 700' stopped everyone.
    import smimig  # noqa: PLC0415
    from smimig.sim import SimulatedRunner  # noqa: PLC0415

    lock = tmp_path / "smimig.lock"
    monkeypatch.setenv("SMIMIG_LOCK_FILE", str(lock))
    directory = ledger_dir(lock)
    runs: list[Callable[[smimig.Smi], object]] = [
        lambda smi: smi.reclaim(),
        lambda smi: smi.lease("1g.5gb").__enter__(),
        lambda smi: smi.apply(smimig.Layout({0: ["1g.5gb"]})),
    ]
    for run in runs:
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir()
        directory.chmod(mode)
        os.chown(directory, 65534, 65534)
        run(smimig.Smi(runner=SimulatedRunner("A100-40GB", mig=True)))
        info = directory.stat()
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o1777)


# -- review findings --------------------------------------------------------------------------------


def test_entries_with_absurd_numbers_or_nesting_are_ignored_not_a_crash(ledger: Ledger) -> None:
    entry = write(ledger)
    rewrite(entry, pid=10**23)  # os.kill() of it would raise OverflowError, not "no such process"
    deep = ledger_dir(ledger.lock_file) / "lease-deep.json"
    deep.write_text("[" * 8000 + "]" * 8000)  # 16 kB, under the size cap: json would recurse past the limit
    view = ledger.read()
    assert view.records == ()
    assert len(view.problems) == 2
    assert live_leases(lock_path=ledger.lock_file) == []


def test_a_hard_link_to_the_lock_file_does_not_disable_the_lock(ledger: Ledger, tmp_path: Path) -> None:
    with node_lock(path=ledger.lock_file):
        pass
    os.link(ledger.lock_file, tmp_path / "someone-elses-name")  # any user can, the file being world-writable
    with node_lock(path=ledger.lock_file, timeout=1):
        ledger.write(FIELDS)
    assert len(ledger.read().records) == 1


def test_a_file_name_cannot_send_escapes_to_roots_terminal(ledger: Ledger) -> None:
    directory = ledger_dir(ledger.lock_file)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "\x1b]0;owned\x07.json").write_text("{}")
    (problem,) = ledger.read().problems
    assert "\x1b" not in problem
    assert "\\x1b]0;owned\\x07.json" in problem
