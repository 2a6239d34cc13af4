"""``status`` waits for the plain nvidia-smi table (its slowest read) only when a GPU in MIG mode has compute
instances, the only case where the table changes the answer; one read at a time it does not read it then."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import smimig
from smimig.node_status import build_status, read_leases, read_plain_table
from smimig.runner import RunResult
from smimig.sim import SimulatedRunner
from smimig.testing import FakeRunner

TABLE = ()  # plain nvidia-smi: no arguments


def every_read(runner: SimulatedRunner) -> smimig.NodeStatus:
    """The status as it was always built: every listing, the table included."""
    smi = smimig.Smi(runner=runner, max_workers=1)
    modes = smi.mig_mode()
    mig = {mode.gpu for mode in modes if mode.current}
    usage, processes = read_plain_table(smi, None)
    return build_status(
        gpus=smi.list_gpus(),
        modes=modes,
        gis=[gi for gi in smi.list_gis() if gi.gpu in mig],
        cis=[ci for ci in smi.list_cis() if ci.gpu in mig],
        profiles=[profile for profile in smi.list_gi_profiles() if profile.gpu in mig],
        usage=usage,
        placements=[entry for entry in smi.list_gi_placements() if entry.gpu in mig],
        processes=processes,
        leases=read_leases(smi) if mig else [],
    )


def node(layout: dict[int, list[str]] | None, *, ci: bool = True) -> SimulatedRunner:
    runner = SimulatedRunner("A100-40GB", gpus=3, mig=layout is not None)
    if layout:
        smi = smimig.Smi(runner=runner)
        for gpu, profiles in layout.items():
            smi.create_gi(gpu, profiles, ci=ci)
    return runner


class HeldTable:
    """Answers from the simulator; the table's call waits until released (or 30 s), and is seen to start."""

    def __init__(self, runner: SimulatedRunner, fail: bool = False) -> None:
        self.runner, self.fail = runner, fail
        self.started, self.release = threading.Event(), threading.Event()

    def __call__(self, args: tuple[str, ...]) -> RunResult | RuntimeError:
        if args == TABLE:
            self.started.set()
            self.release.wait(30)
            if self.fail:
                return RuntimeError("the table's read failed")
        return self.runner.run(args)


@pytest.mark.parametrize(
    ("layout", "ci", "needs_table"),
    [
        (None, True, False),  # MIG off everywhere
        ({}, True, False),  # MIG on, no GPU instance
        ({0: ["3g.20gb", "2g.10gb"]}, False, False),  # GPU instances without compute instances
        ({0: ["3g.20gb", "2g.10gb"], 2: ["7g.40gb"]}, True, True),
    ],
)
def test_one_by_one_the_table_is_read_only_when_needed(
    layout: dict[int, list[str]] | None, ci: bool, needs_table: bool
) -> None:
    runner = node(layout, ci=ci)
    fake = FakeRunner(handler=runner.run)
    assert smimig.Smi(runner=fake, max_workers=1).status() == every_read(runner)
    assert (TABLE in fake.calls) == needs_table


def test_at_once_a_status_that_does_not_need_the_table_does_not_wait_for_it() -> None:
    held = HeldTable(node({0: ["3g.20gb"]}, ci=False), fail=True)
    fake = FakeRunner(handler=held)
    try:
        status = smimig.Smi(runner=fake).status()  # returns while the table's call is still held
        assert held.started.wait(30)  # it started with the others all the same
        assert not held.release.is_set()
    finally:
        held.release.set()
    assert status == every_read(held.runner)  # and its failure, unread, changes nothing


def test_at_once_a_status_that_needs_the_table_waits_for_it() -> None:
    held = HeldTable(node({0: ["3g.20gb"]}))
    fake = FakeRunner(handler=held)
    threading.Timer(0.2, held.release.set).start()
    assert smimig.Smi(runner=fake).status() == every_read(held.runner)
    assert held.release.is_set()


def test_a_failed_table_read_that_is_needed_is_raised() -> None:
    held = HeldTable(node({0: ["3g.20gb"]}), fail=True)
    held.release.set()
    with pytest.raises(RuntimeError, match="the table's read failed"):
        smimig.Smi(runner=FakeRunner(handler=held)).status()


def test_reads_stay_within_max_workers() -> None:
    runner = node({0: ["3g.20gb"]})
    lock, running, most = threading.Lock(), [0], [0]

    def counted(args: tuple[str, ...]) -> RunResult:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            return runner.run(args)
        finally:
            with lock:
                running[0] -= 1

    for workers in (2, 3):
        most[0] = 0
        assert smimig.Smi(runner=FakeRunner(handler=counted), max_workers=workers).status() == every_read(runner)
        assert most[0] <= workers


def test_without_a_ledger_status_loads_none_of_its_machinery(tmp_path: Path) -> None:
    # Leases mark instances on the maps; with no ledger directory there is none to mark, and the ledger's
    # modules stay unloaded: every smimig status on a MIG node would pay for them (the simulator loads json).
    code = (
        "import sys, smimig\n"
        "from smimig.sim import SimulatedRunner\n"
        "smi = smimig.Smi(runner=SimulatedRunner('A30', mig=True))\n"
        "smi.create_gi(0, ['2g.12gb'], ci=True)\n"
        "assert 'GI 1' in str(smi.status())\n"
        "print(sorted(m for m in ('smimig.ledger', 'smimig.locking', 'smimig.holders') if m in sys.modules))\n"
    )
    env = {**os.environ, "SMIMIG_LOCK_FILE": str(tmp_path / "node.lock")}
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert loaded.stdout.strip() == "[]"
