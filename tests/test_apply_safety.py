"""apply against a scripted nvidia-smi (pytest-subprocess): busy instances, pending MIG mode; and on GPUs with
MIG off, an impossible layout that leaves MIG mode as it was."""

from __future__ import annotations

from typing import Any

import pytest

import smimig
from smimig import ApplyError, InstanceBusy, Layout, LayoutError
from smimig.exit_codes import ExitCode, exit_code
from smimig.runner import ENV_VAR
from smimig.sim import SimulatedRunner
from smimig.testing import FakeRunner
from tests.fixtures import text_of

SMI = "/opt/fake/nvidia-smi"
MODE_QUERY = ["--query-gpu=index,pci.bus_id,mig.mode.current,mig.mode.pending", "--format=csv,noheader"]
READS = [MODE_QUERY, ["mig", "-lgi"], ["mig", "-lci"], ["mig", "-lgip"], ["mig", "-lgipp"]]


@pytest.fixture
def smi(monkeypatch: pytest.MonkeyPatch) -> smimig.Smi:
    monkeypatch.setenv(ENV_VAR, SMI)
    return smimig.Smi()


def register_reads(fp: Any, node: SimulatedRunner, times: int = 1) -> None:
    """The plan's five reads, answered with what the simulator prints for ``node``'s state."""
    for _ in range(times):
        for args in READS:
            result = node.run(args)
            fp.register([SMI, *args], stdout=result.stdout, returncode=result.returncode)


def seed_node() -> SimulatedRunner:
    node = SimulatedRunner("A30", gpus=2)
    smimig.Smi(runner=node).enable_mig(0)
    smimig.Smi(runner=node).create_gi(0, ["5", "5"], ci=True)
    return node


def test_refuses_to_destroy_an_instance_a_process_runs_on(fp: Any, smi: smimig.Smi) -> None:
    register_reads(fp, seed_node())
    fp.register([SMI], stdout=text_of("synthetic/table-processes.txt"))  # PID 41233 on GPU 0 GI 1 CI 0
    with pytest.raises(InstanceBusy) as caught:
        smi.apply(Layout.from_dict({0: ["4g.24gb"]}))
    assert [(p.pid, p.gpu, p.gi, p.ci) for p in caught.value.processes] == [(41233, 0, 1, 0)]
    assert "PID 41233 (python train.py) on GPU 0 GI 1 CI 0" in str(caught.value)
    mutating = [call for call in fp.calls if any(option in call for option in ("-dci", "-dgi", "-cgi", "-mig"))]
    assert mutating == []


def test_force_destroys_anyway(fp: Any, smi: smimig.Smi) -> None:
    node = seed_node()
    register_reads(fp, node)
    fp.register([SMI], stdout=text_of("synthetic/table-processes.txt"))
    fp.register([SMI, "mig", "-i", "0", "-gi", "1,2", "-dci"], stdout=text_of("synthetic/a30-dci.txt"))
    fp.register([SMI, "mig", "-i", "0", "-gi", "1,2", "-dgi"], stdout=text_of("synthetic/a30-dgi.txt"))
    after = SimulatedRunner("A30", gpus=2)
    smimig.Smi(runner=after).enable_mig(0)
    created = after.run(["mig", "-i", "0", "-cgi", "4g.24gb:0", "-C"])
    fp.register([SMI, "mig", "-i", "0", "-cgi", "4g.24gb:0", "-C"], stdout=created.stdout)
    register_reads(fp, after)  # verification
    for args in (MODE_QUERY, ["mig", "-lgi"], ["mig", "-lci"]):  # export
        fp.register([SMI, *args], stdout=after.run(args).stdout)
    result = smi.apply(Layout.from_dict({0: ["4g.24gb"]}), force=True)
    assert [str(step) for step in result.ran] == [
        "nvidia-smi mig -i 0 -gi 1,2 -dci",
        "nvidia-smi mig -i 0 -gi 1,2 -dgi",
        "nvidia-smi mig -i 0 -cgi 4g.24gb:0 -C",
    ]


def test_pending_mig_mode_is_reported_not_pretended(fp: Any, smi: smimig.Smi) -> None:
    node = SimulatedRunner("A30", gpus=2)
    register_reads(fp, node)
    fp.register([SMI], stdout=text_of("a100-80gb-pcie-driver515/table.txt"))  # no process
    fp.register([SMI, "-i", "1", "-mig", "1"], stdout=text_of("a100-80gb-pcie-driver515/mig1-pending-inuse.txt"))
    register_reads(fp, node)  # verification: GPU 1 is left out, it waits for its mode change
    for args in (MODE_QUERY, ["mig", "-lgi"], ["mig", "-lci"]):
        fp.register([SMI, *args], stdout=node.run(args).stdout)
    result = smi.apply(Layout.from_dict({1: ["2g.12gb"]}))
    (change,) = result.pending
    assert (change.gpu, change.pending, change.reason) == (1, True, "In use by another client")
    assert [str(step) for step in result.ran] == ["nvidia-smi -i 1 -mig 1"]
    assert "GPU 1: MIG enable is pending (In use by another client)" in str(result)
    assert not any("-cgi" in call for call in fp.calls)


# -- a GPU with MIG off: an impossible layout leaves MIG mode as it was -----------------------------------

IMPOSSIBLE = {"H100-80GB": {0: ["4g.40gb", "4g.40gb"]}, "A30": {0: ["4g.24gb", "4g.24gb"]}}
CHANGES = ("-mig", "-cgi", "-cci", "-dci", "-dgi")


def mig_off(model: str) -> tuple[smimig.Smi, FakeRunner]:
    fake = FakeRunner(handler=SimulatedRunner(model, gpus=1).run)  # records every call
    return smimig.Smi(runner=fake), fake


def test_driver_580_checks_an_impossible_layout_before_turning_mig_on() -> None:
    smi, fake = mig_off("H100-80GB")  # driver 580 lists the profiles with MIG off
    layout = Layout.from_dict(IMPOSSIBLE["H100-80GB"])
    for attempt in (smi.plan, lambda layout: smi.apply(layout, dry_run=True), smi.apply):
        with pytest.raises(LayoutError, match="at most 1 fit"):
            attempt(layout)
    assert not [call for call in fake.calls if any(option in call for option in CHANGES)]
    assert [mode.current for mode in smi.mig_mode()] == [False]
    fits = smi.plan(Layout.from_dict({0: ["4g.40gb", "3g.40gb"]}))  # and a layout that fits is planned whole
    assert [str(step) for step in fits.steps] == [
        "nvidia-smi -i 0 -mig 1",
        "nvidia-smi mig -i 0 -cgi 4g.40gb:0,3g.40gb:4 -C",
    ]


def test_driver_545_says_the_check_waits_for_mig_mode_and_turns_it_off_again() -> None:
    smi, fake = mig_off("A30")  # driver 545 lists no profiles until MIG is on
    layout = Layout.from_dict(IMPOSSIBLE["A30"])
    waits = "GPU 0: checked and planned once MIG is on (with MIG off this driver lists no profiles); "
    assert str(smi.plan(layout)).startswith(waits + "apply turns MIG off again if the layout does not fit\n")
    assert str(smi.apply(layout, dry_run=True)).startswith("dry run, nothing changed:\n" + waits)
    with pytest.raises(ApplyError) as caught:
        smi.apply(layout)
    error = caught.value
    assert str(error.failure).startswith(
        "GPU 0: 2 x 4g.24gb, but at most 1 fit (Total 1) (found once MIG was on: with MIG off this driver lists "
        "no profiles)"
    )
    assert [str(step) for step in error.ran] == ["nvidia-smi -i 0 -mig 1"]
    assert [str(step) for step in error.restored] == ["nvidia-smi -i 0 -mig 0"]
    assert exit_code(error) == ExitCode.PARTIAL
    assert [mode.current for mode in smi.mig_mode()] == [False]
    assert [call for call in fake.calls if "-mig" in call] == [("-i", "0", "-mig", "1"), ("-i", "0", "-mig", "0")]
