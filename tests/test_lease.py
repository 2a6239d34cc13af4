"""Leases: exactly one MIG device for exactly as long as the block, even when others lease at once."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs
import pytest

import smimig
from smimig import LeaseError, LedgerError, cli, interrupts
from smimig.errors import Terminated
from smimig.leasing import LeaseWarning
from smimig.ledger import Ledger, live_leases
from smimig.locking import holding
from smimig.runner import RunResult
from smimig.sim import Fault, SimulatedRunner
from smimig.testing import Answer, FakeRunner


@pytest.fixture(autouse=True)
def lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "smimig.lock"
    monkeypatch.setenv("SMIMIG_LOCK_FILE", str(path))
    return path


def node(model: str = "A100-40GB", gpus: int = 1) -> tuple[smimig.Smi, SimulatedRunner]:
    runner = SimulatedRunner(model, gpus=gpus, mig=True)
    return smimig.Smi(runner=runner), runner


def test_lease_yields_a_device_and_cleans_up() -> None:
    smi, _ = node()
    smi.create_gi(0, ["3g.20gb"], ci=True)  # someone else's instance: never touched
    before = smi.list_gis()
    with smi.lease("1g.5gb") as held:
        assert held.profile_name == "MIG 1g.5gb"
        assert held.env["CUDA_VISIBLE_DEVICES"] == held.uuid
        assert [d.uuid for d in smi.devices() if (d.gi, d.ci) == (held.gi, held.ci)] == [held.uuid]
        assert len(smi.list_gis()) == 2
    assert smi.list_gis() == before


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_cleanup_after_an_exception_or_ctrl_c(error: BaseException) -> None:
    smi, _ = node()
    with pytest.raises(type(error)), smi.lease("2g.10gb"):
        raise error
    assert smi.list_gis() == []


def test_ci_profile_and_gpu() -> None:
    smi, _ = node(gpus=2)
    with smi.lease("3g.20gb", gpu=1, ci_profile="1c.3g.20gb") as held:
        assert held.gpu == 1
        assert [ci.short_name for ci in smi.list_cis(1)] == ["1c.3g.20gb"]
    assert smi.list_cis() == []


def test_retries_when_someone_else_took_the_slot() -> None:
    smi, runner = node()
    runner.node.faults.append(Fault("-cgi", "Insufficient Resources", nth=1))  # outside smimig, first
    with smi.lease("1g.5gb") as held:
        assert held.gi >= 1
    assert runner.node.calls["-cgi"] == 2


def test_no_room_says_what_was_free() -> None:
    smi, _ = node()
    smi.create_gi(0, ["4g.20gb"], ci=True)
    with pytest.raises(LeaseError) as caught, smi.lease("4g.20gb"):
        pass
    assert caught.value.free == ("GPU 0: 4g.20gb 0/1 free",)
    assert caught.value.profile == "4g.20gb"
    assert "no room for 4g.20gb on any GPU in MIG mode" in str(caught.value)


def test_release_failure_says_what_is_left() -> None:
    smi, runner = node()
    with pytest.raises(LeaseError) as caught, smi.lease("1g.5gb") as held:
        runner.add_process(held.gpu, held.gi, held.ci, pid=777)  # a process outlives the block
    assert caught.value.left == held
    assert "still there" in str(caught.value)
    runner.remove_process(777)


def test_lease_prefers_a_gpu_already_carved() -> None:
    smi, _ = node(gpus=2)
    smi.create_gi(1, ["3g.20gb"], ci=True)
    with smi.lease("1g.5gb") as held:
        assert held.gpu == 1


def test_bad_arguments_start_nothing() -> None:
    smi, runner = node()
    for bad in ("5,7", "$(x)", ""):
        with pytest.raises(ValueError, match="profile"), smi.lease(bad):
            pass
    assert runner.node.calls == {}


def test_seven_threads_lease_at_once() -> None:
    smi, runner = node()
    together = threading.Barrier(7, timeout=60)  # each holds its device until all seven hold theirs

    def one(_: int) -> str:
        with smi.lease("1g.5gb") as held:
            together.wait()
            return held.uuid

    with ThreadPoolExecutor(max_workers=7) as pool:
        uuids = list(pool.map(one, range(7)))
    assert len(set(uuids)) == 7  # all at once, all distinct
    assert smi.list_gis() == []
    runner.node.check()


def test_cli_lease_runs_the_command_and_passes_its_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    simulate = ["--simulate", "A100-40GBx1"]
    assert cli.main([*simulate, "mode", "on", "-i", "0"], io.StringIO(), io.StringIO()) == 0
    code = "import os, sys; print(os.environ['CUDA_VISIBLE_DEVICES']); sys.exit(7)"
    err = io.StringIO()
    assert cli.main([*simulate, "lease", "1g.5gb", "--", sys.executable, "-c", code], io.StringIO(), err) == 7
    assert capfd.readouterr().out.startswith("MIG-")  # the command's own output, straight to the terminal
    assert "smimig: leased MIG 1g.5gb on GPU 0" in err.getvalue()
    gis = io.StringIO()
    assert cli.main([*simulate, "gis"], gis, io.StringIO()) == 0
    assert gis.getvalue() == "(none)\n"


# -- many processes, one node (slow: each nvidia-smi call starts the stand-in binary) ----------------


def stand_in(tmp_path: Path) -> dict[str, str]:
    script = tmp_path / "nvidia-smi"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m smimig.sim "$@"\n')
    script.chmod(0o755)
    env = {
        **os.environ,
        "SMIMIG_NVIDIA_SMI": str(script),
        "SMIMIG_SIM_STATE": str(tmp_path / "node.json"),
        "SMIMIG_SIM_MODEL": "A100-40GBx1",
    }
    subprocess.run([str(script), "-i", "0", "-mig", "1"], env=env, check=True, capture_output=True)
    return env


# Lease, then hold the device until all seven hold theirs (a barrier of files), so they overlap for sure.
LEASE_AND_HOLD = """
import json, os, sys, time, smimig
barrier, count = sys.argv[1], int(sys.argv[2])
with smimig.lease("1g.5gb") as held:
    print(json.dumps({"uuid": held.uuid, "gi": held.gi}), flush=True)
    open(os.path.join(barrier, str(os.getpid())), "w").close()
    deadline = time.monotonic() + 180
    while len(os.listdir(barrier)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
"""


@pytest.mark.slow
def test_seven_processes_lease_at_once(tmp_path: Path) -> None:
    env = stand_in(tmp_path)
    barrier = tmp_path / "barrier"
    barrier.mkdir()

    def one(_: int) -> subprocess.CompletedProcess[str]:
        args = [sys.executable, "-c", LEASE_AND_HOLD, str(barrier), "7"]
        return subprocess.run(args, env=env, capture_output=True, text=True, timeout=240, check=False)

    with ThreadPoolExecutor(max_workers=7) as pool:
        results = list(pool.map(one, range(7)))
    assert [result.returncode for result in results] == [0] * 7, [result.stderr[-500:] for result in results]
    leases = [json.loads(result.stdout) for result in results]
    assert len({held["uuid"] for held in leases}) == 7  # all at once, all distinct
    leftover = subprocess.run(
        [env["SMIMIG_NVIDIA_SMI"], "mig", "-lgi"], env=env, capture_output=True, text=True, check=False
    )
    assert leftover.stdout == "No GPU instances found: Not Found\n"


@pytest.mark.slow
def test_cli_lease_passes_the_exit_code(tmp_path: Path) -> None:
    env = stand_in(tmp_path)
    code = "import os, sys; print(os.environ['CUDA_VISIBLE_DEVICES']); sys.exit(7)"
    result = subprocess.run(
        [sys.executable, "-m", "smimig", "lease", "1g.5gb", "--", sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 7
    assert result.stdout.startswith("MIG-")
    assert "smimig: leased MIG 1g.5gb on GPU 0" in result.stderr
    leftover = subprocess.run(
        [env["SMIMIG_NVIDIA_SMI"], "mig", "-lgi"], env=env, capture_output=True, text=True, check=False
    )
    assert leftover.stdout == "No GPU instances found: Not Found\n"


# -- one lock, a ledger, identity checks, orphans (issue 15) ---------------------------------------------


def dead_holder(entry: str | Path) -> None:
    """Make an entry's holder a process that has ended (as SIGKILL would), keeping its file and owner."""
    process = subprocess.Popen(["true"])
    process.wait()
    path = Path(entry)
    data = json.loads(path.read_text())
    data.update(pid=process.pid, start_time=1)  # start_time: even a reused pid is not that process
    path.write_text(json.dumps(data))


def abandoned(smi: smimig.Smi, profile: str = "1g.5gb", gpu: int = 0) -> Path:
    """A lease whose holder was killed: its instances made, its entry written, its holder gone."""
    from smimig.leasing import consistent_devices  # noqa: PLC0415

    lock_file = Path(os.environ["SMIMIG_LOCK_FILE"])
    with smi.node_lock():
        (made,) = smi.create_gi(gpu, [profile], ci=True)
        (gi,) = [item for item in smi.list_gis(gpu) if item.id == made.id]
        (uuid,) = [device.uuid for device in consistent_devices(smi, gpu) if (device.gi, device.ci) == (gi.id, 0)]
        fields = {"state": "held", "gpu": gpu, "gi": gi.id, "ci": 0, "profile": gi.name, "uuid": uuid}
        entry = Ledger(lock_file).write({**fields, "placement": [gi.placement.start, gi.placement.size]})
    dead_holder(entry)
    return entry


def ledger_files(lock: Path) -> list[str]:
    directory = lock.with_name("smimig.leases")
    return sorted(name for name in os.listdir(directory) if not name.startswith(".")) if directory.exists() else []


def test_a_lease_is_in_the_ledger_while_it_is_held(lock: Path) -> None:
    smi, _ = node()
    with smi.lease("1g.5gb") as held:
        (record,) = smi.leases()
        assert (record.gpu, record.gi, record.ci, record.uuid, record.state) == (0, held.gi, held.ci, held.uuid, "held")
        assert (record.placement, record.profile, record.pid, record.alive) == (
            held.placement,
            "MIG 1g.5gb",
            os.getpid(),
            True,
        )
        assert record.entry == held.entry
        assert live_leases(lock_path=lock) == [record]
    assert smi.leases() == []
    assert ledger_files(lock) == []


def test_a_release_between_a_leases_two_reads_cannot_hand_it_a_neighbours_uuid() -> None:
    runner = SimulatedRunner("A100-40GB", mig=True)
    outside = smimig.Smi(runner=runner)
    outside.create_gi(0, ["1g.5gb"], ci=True)  # GI 1: its device is listed before the lease's
    seen = {"created": False, "released": False}

    def release_between_reads(args: tuple[str, ...]) -> RunResult:
        answer = runner.run(args)
        if "-cci" in args:
            seen["created"] = True
        elif seen["created"] and not seen["released"] and args in (("-L",), ("-i", "0"), ()):
            seen["released"] = True  # right after the lease's first device read: the neighbour goes
            outside.destroy_ci(0, gi=1)
            outside.destroy_gi(0, gi=1)
        return answer

    smi = smimig.Smi(runner=FakeRunner(handler=release_between_reads))
    with smi.lease("1g.5gb") as held:
        assert seen["released"]
        assert [device.uuid for device in outside.devices(0) if (device.gi, device.ci) == (held.gi, held.ci)] == [
            held.uuid
        ]
    assert outside.list_gis() == []


def test_every_change_of_a_lease_holds_the_node_lock(lock: Path) -> None:
    runner = SimulatedRunner("A100-40GB", mig=True)
    changes: list[tuple[str, bool]] = []

    def watch(args: tuple[str, ...]) -> RunResult:
        change = next((option for option in ("-cgi", "-cci", "-dci", "-dgi") if option in args), None)
        if change:
            changes.append((change, holding(lock)))
        return runner.run(args)

    with smimig.Smi(runner=FakeRunner(handler=watch)).lease("1g.5gb"):
        assert not holding(lock)  # not while the device is in use
    assert changes == [("-cgi", True), ("-cci", True), ("-dci", True), ("-dgi", True)]


def test_a_replaced_gpu_instance_is_never_destroyed(lock: Path) -> None:
    smi, _ = node()
    leasing = smi.lease("1g.5gb")
    held = leasing.__enter__()
    # another client (an apply, say) destroys the leased GI and makes a 3g one that gets the same id
    smi.destroy_ci(0, gi=held.gi)
    smi.destroy_gi(0, gi=held.gi)
    (replacement,) = smi.create_gi(0, ["3g.20gb"], ci=True)
    assert replacement.id == held.gi
    with pytest.warns(LeaseWarning) as warned:
        leasing.__exit__(None, None, None)
    ((gi,),) = [smi.list_gis()]
    assert (gi.id, gi.name) == (held.gi, "MIG 3g.20gb")  # still there
    (message,) = [str(warning.message) for warning in warned]
    assert message.startswith(f"released the lease on GPU 0 (GI {held.gi}, CI {held.ci}, {held.uuid}): GPU instance")
    assert "GPU instance 1 is now a MIG 3g.20gb at 4:4, not the MIG 1g.5gb at 6:1 it was" in message
    assert message.endswith("nothing was destroyed")
    assert ledger_files(lock) == []


def test_a_device_gone_before_release_is_said_and_nothing_destroyed(lock: Path) -> None:
    smi, runner = node()
    leasing = smi.lease("1g.5gb")
    held = leasing.__enter__()
    smi.destroy_ci(0, gi=held.gi)
    smi.destroy_gi(0, gi=held.gi)
    calls = dict(runner.node.calls)
    with pytest.warns(LeaseWarning, match="GPU instance 1 is gone already"):
        leasing.__exit__(None, None, None)
    assert runner.node.calls.get("-dgi") == calls.get("-dgi")  # the release destroyed nothing
    assert ledger_files(lock) == []


def test_the_cli_prints_what_a_release_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    simulate = ["--simulate", "A100-40GBx1"]
    assert cli.main([*simulate, "mode", "on", "-i", "0"], io.StringIO(), io.StringIO()) == 0
    job = f"import smimig.cli as c, sys; sys.exit(c.main({[*simulate, 'destroy-ci', '--force']!r}) or c.main({[*simulate, 'destroy-gi', '--force']!r}))"
    err = io.StringIO()
    assert cli.main([*simulate, "lease", "1g.5gb", "--", sys.executable, "-c", job], io.StringIO(), err) == 0
    assert err.getvalue().splitlines()[-1].startswith("smimig: released the lease on GPU 0 (GI 1, CI 0, MIG-")
    assert err.getvalue().endswith(": GPU instance 1 is gone already\n")


def test_ctrl_c_between_the_gpu_and_the_compute_instance_leaves_nothing(lock: Path) -> None:
    runner = SimulatedRunner("A100-40GB", mig=True)
    fake = FakeRunner({("mig", "-i", "0", "-gi", "1", "-cci"): KeyboardInterrupt()}, handler=runner.run)
    with pytest.raises(KeyboardInterrupt), smimig.Smi(runner=fake).lease("1g.5gb"):
        pass
    assert smimig.Smi(runner=runner).list_gis() == []
    assert ledger_files(lock) == []


class SignalAfterCci:
    """The simulator's answers, except that ``-cci`` gives ``answer``; at the next call after it (the undoing's
    first read) this process gets ``signum``, as a second Ctrl-C (or a SIGTERM) would arrive."""

    def __init__(self, runner: SimulatedRunner, answer: Answer, signum: int) -> None:
        self.runner, self.answer, self.signum, self.state = runner, answer, signum, "before"

    def __call__(self, args: tuple[str, ...]) -> Answer:
        if "-cci" in args:
            self.state = "failed"
            return self.answer
        if self.state == "failed":
            self.state = "signalled"
            os.kill(os.getpid(), self.signum)
        return self.runner.run(args)


def test_a_second_ctrl_c_cannot_cut_the_undoing_of_a_half_made_lease_short(lock: Path) -> None:
    runner = SimulatedRunner("A100-40GB", mig=True)
    handler = SignalAfterCci(runner, KeyboardInterrupt(), signal.SIGINT)
    smi = smimig.Smi(runner=FakeRunner(handler=handler))
    with pytest.raises(KeyboardInterrupt), smi.lease("1g.5gb"):
        pass
    assert handler.state == "signalled"
    assert smimig.Smi(runner=runner).list_gis() == []  # undone all the same
    assert ledger_files(lock) == []


def test_ctrl_c_between_a_releases_dci_and_dgi_waits_for_the_release(lock: Path) -> None:
    # Found by review: in a notebook the kernel lives on after a Ctrl-C, so a release cut short between -dci
    # and -dgi left a GPU instance whose entry a live process holds: no reclaim would take it.
    runner = SimulatedRunner("A100-40GB", mig=True)

    def ctrl_c_after_dci(args: tuple[str, ...]) -> Answer:
        result = runner.run(args)
        if "-dci" in args:
            os.kill(os.getpid(), signal.SIGINT)
        return result

    smi = smimig.Smi(runner=FakeRunner(handler=ctrl_c_after_dci))
    with pytest.raises(KeyboardInterrupt), smi.lease("1g.5gb"):
        pass
    assert smimig.Smi(runner=runner).list_gis() == []  # released all the same, then interrupted
    assert ledger_files(lock) == []


def test_ctrl_c_during_a_releases_reads_waits_for_the_release(lock: Path) -> None:
    # Found by review: a Ctrl-C while the release read the node (under the lock) left the lease's instances and
    # its entry, held by a process that lives on (a notebook's kernel), for no reclaim to take.
    runner = SimulatedRunner("A100-40GB", mig=True)
    releasing = False

    def ctrl_c_at_the_first_read(args: tuple[str, ...]) -> Answer:
        nonlocal releasing
        if releasing:
            releasing = False
            os.kill(os.getpid(), signal.SIGINT)
        return runner.run(args)

    smi = smimig.Smi(runner=FakeRunner(handler=ctrl_c_at_the_first_read))
    with pytest.raises(KeyboardInterrupt), smi.lease("1g.5gb"):
        releasing = True
    assert smimig.Smi(runner=runner).list_gis() == []
    assert ledger_files(lock) == []


def test_ctrl_c_between_a_reclaims_dci_and_dgi_waits_for_the_reclaim(lock: Path) -> None:
    # Found by review: the orphan's GI was left with no CI and an entry naming the CI, which the next reclaim
    # must leave alone (it cannot be told from a replacement): an instance no entry accounts for.
    runner = SimulatedRunner("A100-40GB", mig=True)
    abandoned(smimig.Smi(runner=runner), "1g.5gb")

    def ctrl_c_after_dci(args: tuple[str, ...]) -> Answer:
        result = runner.run(args)
        if "-dci" in args:
            os.kill(os.getpid(), signal.SIGINT)
        return result

    with pytest.raises(KeyboardInterrupt):
        smimig.Smi(runner=FakeRunner(handler=ctrl_c_after_dci)).reclaim()
    assert smimig.Smi(runner=runner).list_gis() == []
    assert ledger_files(lock) == []


def test_sigterm_while_a_failed_lease_is_undone_is_raised_after_it(lock: Path) -> None:
    runner = SimulatedRunner("A100-40GB", mig=True)
    failed = RunResult(("nvidia-smi",), 2, "", "Failed to create compute instances: Unknown Error\n")
    handler = SignalAfterCci(runner, failed, signal.SIGTERM)
    smi = smimig.Smi(runner=FakeRunner(handler=handler))
    with pytest.raises(Terminated) as caught, interrupts.raising(signal.SIGTERM), smi.lease("1g.5gb"):
        pass  # SIGTERM raised, as the smimig command has it
    assert caught.value.signal == signal.SIGTERM
    assert isinstance(caught.value.__cause__, LeaseError)  # what stopped the lease is kept
    assert smimig.Smi(runner=runner).list_gis() == []
    assert ledger_files(lock) == []


class Killed(BaseException):
    """Stands for SIGKILL: nothing of the process runs after it (no except, no finally of smimig's matters)."""


def test_killed_between_a_releases_dci_and_dgi_is_found_by_reclaim(lock: Path) -> None:
    runner = SimulatedRunner("A100-40GB", mig=True)

    def killed_at_dgi(args: tuple[str, ...]) -> Answer:
        if "-dgi" in args:
            raise Killed
        return runner.run(args)

    smi = smimig.Smi(runner=FakeRunner(handler=killed_at_dgi))
    with pytest.raises(Killed), smi.lease("1g.5gb"):
        pass
    (record,) = smimig.Smi(runner=runner).leases()
    assert (record.state, record.ci, record.gi) == ("releasing", None, 1)  # said before -dci ran
    dead_holder(record.entry)
    report = smimig.Smi(runner=runner).reclaim()
    assert [(outcome.action, outcome.reason) for outcome in report.outcomes] == [
        ("destroyed", "destroyed GPU instance 1")
    ]
    assert smimig.Smi(runner=runner).list_gis() == []
    assert ledger_files(lock) == []


def test_a_lease_stays_live_while_its_recorded_job_runs(lock: Path) -> None:
    from smimig.leasing import record_job  # noqa: PLC0415

    smi, _ = node()
    leasing = smi.lease("1g.5gb")
    held = leasing.__enter__()  # and never left: as if its holder were killed
    job = subprocess.Popen(["sleep", "60"])
    try:
        with pytest.raises(ValueError, match="pid must be a process id"):
            record_job(held, True, smi=smi)
        with pytest.raises(ValueError, match="no ledger entry"):
            record_job(attrs.evolve(held, entry=None), job.pid, smi=smi)
        record_job(held, job.pid, smi=smi)
        assert held.entry is not None
        dead_holder(held.entry)
        (record,) = smi.leases()
        assert (record.alive, record.job_pid) == (True, job.pid)
        assert smi.reclaim().outcomes == ()
    finally:
        job.kill()
        job.wait()
    (record,) = smi.leases()
    assert not record.alive
    assert [outcome.action for outcome in smi.reclaim().outcomes] == ["destroyed"]
    with pytest.warns(LeaseWarning, match="gone already"):
        leasing.__exit__(None, None, None)


def killed_while_cgi_ran(smi: smimig.Smi, lock: Path) -> Path:
    """A lease's entry, written before -cgi ran, whose holder was killed as -cgi made its 2g.10gb at slice 2."""
    with smi.node_lock():
        fields = {"state": "creating", "gpu": 0, "gi": None, "ci": None, "profile": "MIG 2g.10gb", "uuid": None}
        entry = Ledger(lock).write({**fields, "placement": [2, 2]})
        smi.create_gi(0, ["2g.10gb:2"])  # -cgi finished; its holder never heard
    dead_holder(entry)
    return entry


def test_killed_while_cgi_ran_is_found_by_reclaim(lock: Path) -> None:
    smi, _ = node()
    killed_while_cgi_ran(smi, lock)
    (orphan,) = smi.leases()
    assert (orphan.alive, orphan.state, orphan.gi) == (False, "creating", None)
    report = smi.reclaim()
    assert [(outcome.action, outcome.reason) for outcome in report.outcomes] == [
        ("destroyed", "destroyed GPU instance 1")
    ]
    assert smi.list_gis() == []
    assert ledger_files(lock) == []


def test_an_entry_reclaim_could_not_remove_is_never_matched_again(lock: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A non-root reclaim destroys another user's orphan but cannot remove its entry (the sticky bit). The entry
    # must not later match the next instance at that placement, made by someone else, and destroy it.
    smi, _ = node()
    entry = killed_while_cgi_ran(smi, lock)
    removing = Ledger.remove

    def sticky(self: Ledger, path: str | os.PathLike[str]) -> None:
        if Path(path) == entry:  # another user's file, to a user's reclaim
            raise LedgerError(str(path), "cannot be removed (Operation not permitted): another user's entry")
        removing(self, path)

    monkeypatch.setattr(Ledger, "remove", sticky)
    (outcome,) = smi.reclaim().outcomes
    assert outcome.action == "destroyed"
    assert outcome.reason.endswith("marked settled: no reclaim acts on it again")
    (record,) = smi.leases()
    assert (record.alive, record.settled) == (False, True)
    assert str(record).endswith(f"(PID {record.pid}, no longer running, settled) at {record.created_at}")
    smi.create_gi(0, ["2g.10gb:2"])  # an admin's GPU instance, at the same placement, without compute instance
    assert smi.reclaim().outcomes == ()  # nothing to say: the entry stays for root
    assert [(gi.id, gi.placement.start) for gi in smi.list_gis()] == [(1, 2)]  # the admin's is still there
    assert "settled lease entry" in str(smi.doctor())
    # A lease's orphan at the id the settled entry once had is reclaimed: the settled entry claims nothing.
    smi.destroy_gi(0, gi=1)
    abandoned(smi, "2g.10gb")
    assert [(outcome.action, outcome.lease.gi) for outcome in smi.reclaim().outcomes] == [("destroyed", 1)]
    smi.create_gi(0, ["2g.10gb:2"])  # the admin's again
    monkeypatch.setattr(Ledger, "remove", removing)  # root's reclaim removes it, and its marker
    (outcome,) = smi.reclaim().outcomes
    assert (outcome.action, outcome.reason) == ("gone", "settled by an earlier reclaim; its entry is removed")
    assert ledger_files(lock) == []
    assert [gi.id for gi in smi.list_gis()] == [1]  # the node untouched


def test_a_settled_marker_names_one_file_not_a_name(lock: Path) -> None:
    # A marker written for an entry does not settle a later file under the same name (a rewritten entry).
    smi, _ = node()
    with smi.node_lock():
        fields = {"state": "creating", "gpu": 0, "gi": None, "ci": None, "profile": "MIG 2g.10gb", "uuid": None}
        entry = Ledger(lock).write({**fields, "placement": [2, 2]})
        Ledger(lock).mark_settled(entry)
        entry.with_name(entry.name + ".settled-999").write_text("[1, 2]")  # not a marker: ignored
    dead_holder(entry)  # the entry rewritten since: its modification time is not the marked one
    (record,) = smi.leases()
    assert not record.settled
    assert smi.leases().warnings == ()  # markers are not entries: nothing to report


def test_reclaim_destroys_orphans_after_checking_who_they_are(lock: Path) -> None:
    smi, _ = node()
    orphan, replaced, twice, gone = (abandoned(smi, "1g.5gb") for _ in range(4))  # GIs 1, 2, 3, 4
    smi.destroy_ci(0, gi=2)
    smi.destroy_gi(0, gi=2)
    smi.create_gi(0, ["2g.10gb"], ci=True)  # another client's GI, and it gets id 2
    smi.destroy_ci(0, gi=4)
    smi.destroy_gi(0, gi=4)
    forged = Path(shutil.copy(twice, twice.with_name("forged.json")))  # a second claim on GI 3
    with smi.node_lock():
        alive = Ledger(lock).write({**json.loads(orphan.read_text()), "gi": 7})  # a live lease: not an orphan
    report = smi.reclaim()
    actions = {Path(outcome.lease.entry): outcome.action for outcome in report.outcomes}
    assert actions == {orphan: "destroyed", replaced: "replaced", twice: "kept", forged: "kept", gone: "gone"}
    assert [(gi.id, gi.name) for gi in smi.list_gis()] == [(2, "MIG 2g.10gb"), (3, "MIG 1g.5gb")]
    assert ledger_files(lock) == sorted([alive.name, twice.name, forged.name])
    assert [outcome.lease.gi for outcome in report.destroyed] == [1]
    assert sorted(outcome.lease.gi or 0 for outcome in report.removed) == [2, 4]
    (kept, _) = report.kept
    assert kept.reason.startswith("claimed by more than one entry (")
    assert str(report).splitlines()[0].startswith("destroyed: GPU 0 GI 1 CI 0 (MIG 1g.5gb at ")


def test_the_next_lease_reclaims_orphans_first(lock: Path) -> None:
    smi, _ = node()
    orphan = json.loads(abandoned(smi, "4g.20gb").read_text())
    leasing = smi.lease("4g.20gb")  # room only once the orphan is gone
    with pytest.warns(LeaseWarning, match=r"reclaimed an orphaned lease: destroyed: GPU 0 GI 1 CI 0 \(MIG 4g.20gb"):
        held = leasing.__enter__()
    assert held.gi == orphan["gi"]
    leasing.__exit__(None, None, None)
    assert smi.list_gis() == []
    assert ledger_files(lock) == []


def test_doctor_names_each_orphan(lock: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    smi, _ = node()
    abandoned(smi, "2g.10gb")
    report = smi.doctor()
    assert not report.healthy
    (line,) = [line for line in str(report).splitlines() if "orphaned" in line]
    assert line.startswith("!!  orphaned lease: GPU 0 GI 1 CI 0 (MIG 2g.10gb at 4:2, MIG-")
    assert line.endswith("; smimig reclaim destroys it")
    assert ", no longer running) at " in line
    smi.reclaim()
    assert smi.doctor().healthy


def test_cli_leases_and_reclaim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    simulate = ["--simulate", "A100-40GBx1"]
    assert cli.main([*simulate, "mode", "on", "-i", "0"], io.StringIO(), io.StringIO()) == 0
    out = io.StringIO()
    assert cli.main([*simulate, "leases"], out, io.StringIO()) == 0
    assert out.getvalue() == "(no leases)\n"
    lock_file = tmp_path / "cache" / "smimig" / "simulate-A100-40GBx1.json.node.lock"
    monkeypatch.setenv("SMIMIG_LOCK_FILE", str(lock_file))  # for abandoned(): the simulation's own lock
    smi = cli._client(cli._parser().parse_args([*simulate, "gis"]))
    abandoned(smi, "3g.20gb")
    out = io.StringIO()
    assert cli.main([*simulate, "leases", "--json"], out, io.StringIO()) == 0
    ((record,), ignored) = json.loads(out.getvalue()).values()
    assert (record["gi"], record["profile"], record["alive"], record["placement"], ignored) == (
        1,
        "MIG 3g.20gb",
        False,
        {"start": 4, "size": 4},
        [],
    )
    out = io.StringIO()
    assert cli.main([*simulate, "doctor"], out, io.StringIO()) == 1
    assert "!!  orphaned lease: GPU 0 GI 1 CI 0 (MIG 3g.20gb at 4:4" in out.getvalue()
    out = io.StringIO()
    assert cli.main([*simulate, "reclaim"], out, io.StringIO()) == 0
    assert out.getvalue().startswith("destroyed: GPU 0 GI 1 CI 0 (MIG 3g.20gb at 4:4, MIG-")
    assert out.getvalue().endswith(": destroyed GPU instance 1 and compute instance 0\n")
    out = io.StringIO()
    assert cli.main([*simulate, "gis"], out, io.StringIO()) == 0
    assert out.getvalue() == "(none)\n"


def smimig_command(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smimig", *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def no_instances_left(env: dict[str, str]) -> bool:
    left = subprocess.run(
        [env["SMIMIG_NVIDIA_SMI"], "mig", "-lgi"], env=env, capture_output=True, text=True, check=False
    )
    return left.stdout == "No GPU instances found: Not Found\n"


@pytest.mark.slow
def test_a_lease_killed_with_sigkill_is_an_orphan_the_next_lease_reclaims(tmp_path: Path, lock: Path) -> None:
    env = stand_in(tmp_path)
    job_pid = tmp_path / "job.pid"
    leasing = subprocess.Popen(
        [sys.executable, "-m", "smimig", "lease", "1g.5gb", "--", "sh", "-c", f"echo $$ > {job_pid}; exec sleep 60"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert leasing.stderr is not None
        assert leasing.stderr.readline().startswith("smimig: leased MIG 1g.5gb on GPU 0 (GI 1, CI 0): MIG-")
        while not job_pid.exists() or not job_pid.read_text().strip():
            pass
        leasing.kill()  # SIGKILL: no release, no cleanup
        leasing.wait()
    finally:
        with contextlib.suppress(ValueError, ProcessLookupError, FileNotFoundError):
            os.kill(int(job_pid.read_text()), signal.SIGKILL)  # its job, re-parented to init, ends too
    doctor = smimig_command("doctor", env=env)
    assert doctor.returncode == 1, doctor.stdout
    (orphan,) = [line for line in doctor.stdout.splitlines() if line.startswith("!!")]
    assert orphan.startswith("!!  orphaned lease: GPU 0 GI 1 CI 0 (MIG 1g.5gb at 6:1, MIG-")
    assert re.search(rf"\(PID {leasing.pid}(, job PID \d+)?, no longer running\)", orphan), orphan
    whole = smimig_command("lease", "7g.40gb", "--", "true", env=env)  # room only once the orphan is gone
    assert whole.returncode == 0, whole.stderr
    assert whole.stderr.startswith("smimig: reclaimed an orphaned lease: destroyed: GPU 0 GI 1 CI 0 (MIG 1g.5gb at")
    assert no_instances_left(env)
    assert ledger_files(lock) == []
    assert smimig_command("doctor", env=env).returncode == 0


@pytest.mark.slow
def test_a_lease_whose_smimig_is_killed_stays_live_while_its_job_runs(tmp_path: Path, lock: Path) -> None:
    env = stand_in(tmp_path)
    leasing = subprocess.Popen(
        [sys.executable, "-m", "smimig", "lease", "1g.5gb", "--", "sleep", "60"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    job = None
    try:
        assert leasing.stderr is not None
        assert leasing.stderr.readline().startswith("smimig: leased MIG 1g.5gb on GPU 0 (GI 1, CI 0): MIG-")
        deadline = time.monotonic() + 30
        while job is None and time.monotonic() < deadline:  # until the entry names the job
            with contextlib.suppress(OSError, ValueError, StopIteration):
                entry = next(lock.with_name("smimig.leases").glob("lease-*.json"))
                job = json.loads(entry.read_text()).get("job_pid")
        assert job is not None, "the lease's entry never named its job"
        leasing.kill()  # SIGKILL: no release, no cleanup; its job, in a session of its own, runs on
        leasing.wait()
        (record,) = smimig.Smi(runner=SimulatedRunner("A100-40GB")).leases(lock_path=lock)
        assert (record.alive, record.job_pid, record.pid) == (True, job, leasing.pid)
        assert f"(PID {leasing.pid}, job PID {job}) at " in str(record)
        reclaim = smimig_command("reclaim", env=env)
        assert reclaim.returncode == 0, reclaim.stderr
        assert reclaim.stdout.strip() == "no orphaned leases"  # the device is still the job's
        assert not no_instances_left(env)
    finally:
        if job is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(job, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while holders_running(job) and time.monotonic() < deadline:
        time.sleep(0.05)  # init reaps it
    reclaim = smimig_command("reclaim", env=env)  # both ended: an orphan like any other
    assert reclaim.stdout.startswith("destroyed: GPU 0 GI 1 CI 0 (MIG 1g.5gb at"), reclaim.stdout
    assert no_instances_left(env)
    assert ledger_files(lock) == []


def holders_running(pid: int | None) -> bool:
    from smimig import holders  # noqa: PLC0415

    return pid is not None and holders.state(pid, holders.start_time(pid), os.geteuid(), holders.boot_id()) == "running"


# Lease and release until the deadline; inside each lease, check its UUID against a fresh read of -L and
# the MIG devices table (under the node lock, so no smimig change lands between those two reads).
CHURN = """
import json, sys, time, smimig
deadline = time.monotonic() + float(sys.argv[1])
smi = smimig.Smi()
leases = 0
while time.monotonic() < deadline:
    with smi.lease("1g.5gb") as held:
        with smi.node_lock():
            fresh = [device.uuid for device in smi.devices(held.gpu) if (device.gi, device.ci) == (held.gi, held.ci)]
        if fresh != [held.uuid]:
            print(json.dumps({"gi": held.gi, "ci": held.ci, "uuid": held.uuid, "fresh": fresh}), flush=True)
            sys.exit(1)
        leases += 1
print(json.dumps({"leases": leases}))
"""


@pytest.mark.slow
def test_six_processes_leasing_and_releasing_always_get_their_own_device(tmp_path: Path, lock: Path) -> None:
    env = stand_in(tmp_path)

    def churn(_: int) -> subprocess.CompletedProcess[str]:
        args = [sys.executable, "-c", CHURN, "20"]
        return subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, check=False)

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(churn, range(6)))
    assert [result.returncode for result in results] == [0] * 6, [
        result.stdout + result.stderr[-800:] for result in results
    ]
    assert sum(json.loads(result.stdout)["leases"] for result in results) >= 6
    assert no_instances_left(env)
    assert ledger_files(lock) == []


# -- two Unix users on one node (slow, root only) -----------------------------------------------------------

# The users' nvidia-smi: it asks root's relay (sudo's part) to run the stand-in binary on the shared state.
RELAY_CLIENT = """#!{python} -S
import json, socket, sys
connection = socket.socket(socket.AF_UNIX)
connection.connect({socket!r})
connection.sendall(json.dumps(sys.argv[1:]).encode() + b"\\n")
answer = json.loads(b"".join(iter(lambda: connection.recv(65536), b"")))
sys.stdout.write(answer["out"])
sys.stderr.write(answer["err"])
sys.exit(answer["rc"])
"""

# What user B tries against user A's entry, the ledger and the lock; each attempt: "refused" or "done".
TAMPER = """
import json, os, sys
ledger, entry, lock, dead_pid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
own = os.path.join(ledger, "b-own.json")
data = json.load(open(entry))
attempts = {}

def attempt(name, action):
    try:
        action()
        attempts[name] = "done"
    except OSError:
        attempts[name] = "refused"

def write(path, text):
    with open(path, "w") as stream:
        stream.write(text)

attempt("delete A's entry", lambda: os.unlink(entry))
attempt("overwrite A's entry", lambda: write(entry, "{}"))
write(own, json.dumps({**data, "gi": 5}))
attempt("replace A's entry", lambda: os.replace(own, entry))
attempt("rename A's entry", lambda: os.rename(entry, entry + ".moved"))
attempt("loosen the ledger", lambda: os.chmod(ledger, 0o777))
attempt("replace the lock", lambda: os.unlink(lock))
attempt("copy A's entry as A", lambda: write(os.path.join(ledger, "forged-as-a.json"), json.dumps(data)))
claim = {**data, "uid": os.geteuid(), "user": "b", "pid": dead_pid, "start_time": 1}
attempt("claim A's device, holder gone", lambda: write(os.path.join(ledger, "claim-by-b.json"), json.dumps(claim)))
attempt("link to A's entry", lambda: os.symlink(entry, os.path.join(ledger, "link.json")))
attempt("garble", lambda: write(os.path.join(ledger, "garbled.json"), "{"))
print(json.dumps(attempts))
"""


class Relay:
    """root runs the stand-in binary for the users, over a Unix socket they may connect to."""

    def __init__(self, directory: Path, python: str) -> None:
        import socketserver  # noqa: PLC0415  # only this test serves

        state = directory / "node.json"
        sim = [sys.executable, "-m", "smimig.sim", "--state", str(state), "--model", "A100-40GBx1"]
        subprocess.run([*sim, "-i", "0", "-mig", "1"], check=True, capture_output=True)

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                args = json.loads(self.rfile.readline())
                done = subprocess.run([*sim, *args], capture_output=True, text=True, check=False)
                self.wfile.write(json.dumps({"rc": done.returncode, "out": done.stdout, "err": done.stderr}).encode())

        self.socket = directory / "relay.sock"
        self.server = socketserver.ThreadingUnixStreamServer(str(self.socket), Handler)
        self.socket.chmod(0o666)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.client = directory / "nvidia-smi"
        self.client.write_text(RELAY_CLIENT.format(python=python, socket=str(self.socket)))
        self.client.chmod(0o755)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@attrs.frozen
class User:
    name: str
    uid: int
    gid: int

    def argv(self, *args: str) -> list[str]:
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--", *args]


def others_may_use(path: str | Path) -> bool:
    """Whether users other than root can read (and run) ``path``: o+x on every directory above it, o+r on it."""
    real = Path(os.path.realpath(path))
    return all(os.stat(parent).st_mode & 0o001 for parent in real.parents) and bool(os.stat(real).st_mode & 0o004)


def python_for_others() -> tuple[str, str] | None:
    """An interpreter of this Python version that other users can run, and the PYTHONPATH that gives it
    smimig and its dependencies (this one may live in root's home, as pyenv puts it); None if there is none."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    paths = [str(Path(smimig.__file__).resolve().parent.parent), sysconfig.get_paths()["purelib"]]
    if not all(others_may_use(path) for path in paths):
        return None
    for candidate in (sys.executable, shutil.which(f"python{version}"), f"/usr/bin/python{version}"):
        if candidate and os.path.exists(candidate) and others_may_use(candidate):
            found = subprocess.run(
                [candidate, "-c", "import sys; print(*sys.version_info[:2], sep='.')"],
                capture_output=True,
                text=True,
                check=False,
            )
            if found.stdout.strip() == version:
                return candidate, os.pathsep.join(paths)
    return None


@contextlib.contextmanager
def throw_away_users(*names: str) -> Iterator[list[User]]:
    made: list[str] = []
    try:
        for name in names:
            subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
            made.append(name)
        yield [User(name, pwd.getpwnam(name).pw_uid, pwd.getpwnam(name).pw_gid) for name in names]
    finally:
        for name in made:
            for _ in range(50):  # a process of theirs may still be on its way out
                if subprocess.run(["userdel", name], check=False, capture_output=True).returncode in (0, 6):
                    break
                time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or not all(map(shutil.which, ("useradd", "userdel", "setpriv"))),
    reason="needs root, useradd, userdel and setpriv: it makes two throw-away users and runs smimig as each",
)
def test_two_users_on_one_node_neither_can_make_smimig_destroy_the_others_lease() -> None:  # noqa: PLR0915  # one story
    found = python_for_others()
    if found is None:
        pytest.skip("needs a Python of this version, with smimig and its dependencies, that other users may run")
    python, pythonpath = found
    base = Path(tempfile.mkdtemp(prefix="smimig-two-users-"))  # not pytest's tmp_path: only root may enter that
    base.chmod(0o755)
    signals = base / "signals"
    signals.mkdir()
    signals.chmod(0o1777)
    # the lab's set-up (README: Shared nodes): a root-owned ledger, sticky and world-writable, and a lock
    (base / "smimig.leases").mkdir()
    (base / "smimig.leases").chmod(0o1777)
    (base / "smimig.lock").touch()
    (base / "smimig.lock").chmod(0o666)
    relay = Relay(base, python)
    tag = os.urandom(3).hex()
    try:
        with throw_away_users(f"smimig-a-{tag}", f"smimig-b-{tag}") as (alice, bob), contextlib.ExitStack() as stack:
            env = {
                **os.environ,
                "SMIMIG_NVIDIA_SMI": str(relay.client),
                "SMIMIG_LOCK_FILE": str(base / "smimig.lock"),
                "HOME": str(base),
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONPATH": pythonpath,
            }

            def run(user: User | None, *args: str) -> subprocess.CompletedProcess[str]:
                argv = [python if user else sys.executable, *args]
                return subprocess.run(
                    user.argv(*argv) if user else argv,
                    env=env,
                    cwd=base,
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=False,
                )

            job = f"import os, time\nwhile not os.path.exists({str(signals / 'release')!r}): time.sleep(0.05)"
            leasing = subprocess.Popen(
                alice.argv(python, "-m", "smimig", "lease", "1g.5gb", "--", python, "-c", job),
                env=env,
                cwd=base,
                stderr=subprocess.PIPE,
                text=True,
            )
            stack.callback(leasing.wait, timeout=60)
            stack.callback(leasing.kill)
            stack.callback((signals / "release").touch)  # whatever happens, A's job ends (and the users can go)
            assert leasing.stderr is not None
            leased = leasing.stderr.readline()
            assert leased.startswith("smimig: leased MIG 1g.5gb on GPU 0 (GI 1, CI 0): MIG-"), leased
            uuid = leased.rsplit(" ", 1)[1].strip()
            (entry,) = (base / "smimig.leases").iterdir()
            assert entry.stat().st_uid == alice.uid

            def alices_device() -> list[str]:
                devices = smimig.Smi(runner=smimig.SubprocessRunner(executable=str(relay.client))).devices(0)
                return [device.uuid for device in devices if (device.gi, device.ci) == (1, 0)]

            ended = subprocess.Popen(bob.argv("true"))  # a process of B's that has ended
            ended.wait()
            tampering = run(
                bob, "-c", TAMPER, str(base / "smimig.leases"), str(entry), str(base / "smimig.lock"), str(ended.pid)
            )
            assert tampering.returncode == 0, tampering.stderr
            assert json.loads(tampering.stdout) == {
                "delete A's entry": "refused",
                "overwrite A's entry": "refused",
                "replace A's entry": "refused",
                "rename A's entry": "refused",
                "loosen the ledger": "refused",
                "replace the lock": "refused",
                "copy A's entry as A": "done",
                "claim A's device, holder gone": "done",
                "link to A's entry": "done",
                "garble": "done",
            }
            assert json.loads(entry.read_text())["pid"] != ended.pid  # A's entry is as A wrote it

            # B's claim on A's device has a dead holder: an orphan, but A's live entry claims the device too
            reclaimed = run(bob, "-m", "smimig", "reclaim")
            assert reclaimed.returncode == 0, reclaimed.stderr
            assert "kept: GPU 0 GI 1 CI 0" in reclaimed.stdout
            assert "claimed by more than one entry" in reclaimed.stdout
            assert alices_device() == [uuid]
            ignored = [line for line in reclaimed.stdout.splitlines() if line.startswith("ignored: ")]
            assert (
                len(ignored) == 4
            )  # B's files naming A (the copy, the one it failed to swap in), the link, the garbled one
            assert any(
                f"forged-as-a.json: names {alice.name} (uid {alice.uid}) but belongs to {bob.name}" in i
                for i in ignored
            )

            # B leases (reclaiming orphans first), root reclaims: A's device survives both
            bobs = run(bob, "-m", "smimig", "lease", "1g.5gb", "--", "true")
            assert bobs.returncode == 0, bobs.stderr
            assert alices_device() == [uuid]
            assert run(None, "-m", "smimig", "reclaim").returncode == 0
            assert alices_device() == [uuid]
            doctor = run(None, "-m", "smimig", "doctor")
            assert doctor.returncode == 1
            assert "GPU 0 GI 1 is claimed by 3 lease entries" in doctor.stdout  # A's, B's claim, B's copy
            assert f"ok  leases: 1 live ({alice.name}: GPU 0 GI 1 CI 0 (MIG 1g.5gb at 6:1, {uuid}))" in doctor.stdout

            # a ledger that B owns is refused by A: B could remove anyone's entries there
            owned = base / "owned-by-b"
            owned.mkdir()
            os.chown(owned, bob.uid, bob.gid)
            refused = subprocess.run(
                alice.argv(python, "-m", "smimig", "leases"),
                env={**env, "SMIMIG_LOCK_FILE": str(owned / "smimig.lock")},
                cwd=base,
                capture_output=True,
                text=True,
                check=False,
            )
            assert refused.returncode == 2
            assert f"belongs to {bob.name} (uid {bob.uid}), who could replace what it holds" in refused.stderr

            # A's job ends: A's release destroys A's device (B's claims never stop it) and nothing is left
            (signals / "release").touch()
            assert leasing.wait(timeout=120) == 0
            assert alices_device() == []
            left = smimig.Smi(runner=smimig.SubprocessRunner(executable=str(relay.client))).list_gis()
            assert left == []
            assert not entry.exists()
    finally:
        relay.close()
        shutil.rmtree(base, ignore_errors=True)
