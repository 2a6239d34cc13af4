"""apply never leaves a GPU half-changed: a fault at every step position, and the start comes back."""

from __future__ import annotations

import pytest

import smimig
from smimig import ApplyError, Layout
from smimig.sim import Fault, SimulatedRunner

START = {0: ["4g.20gb", "2g.10gb", "1g.5gb"], 1: ["3g.20gb", "3g.20gb"]}
TARGET = {
    0: [{"profile": "3g.20gb", "cis": ["2c.3g.20gb", "1c.3g.20gb"]}, "1g.5gb", "1g.5gb", "1g.5gb"],
    1: ["7g.40gb"],
}
OPTION = {"destroy-ci": "-dci", "destroy-gi": "-dgi", "create-gi": "-cgi", "create-ci": "-cci", "enable-mig": "-mig"}


def node(faults: list[Fault] | None = None) -> tuple[smimig.Smi, SimulatedRunner]:
    runner = SimulatedRunner("A100-40GB", gpus=2, mig=True)
    smi = smimig.Smi(runner=runner)
    smi.apply(Layout.from_dict(START))
    runner.node.faults.extend(faults or [])
    return smi, runner


def test_the_plan_has_many_steps() -> None:
    smi, _ = node()
    steps = smi.plan(Layout.from_dict(TARGET)).steps
    assert [step.action for step in steps] == [
        "destroy-ci",
        "destroy-gi",
        "create-gi",
        "create-gi",
        "create-ci",
        "destroy-ci",
        "destroy-gi",
        "create-gi",
    ]


@pytest.mark.parametrize("position", range(8))
@pytest.mark.parametrize("reason", ["Insufficient Resources", "In use by another client"])
def test_fault_at_every_step_rolls_back(position: int, reason: str) -> None:
    smi, runner = node()
    starting = smi.export()
    steps = smi.plan(Layout.from_dict(TARGET)).steps
    option = OPTION[steps[position].action]
    earlier = sum(1 for step in steps[:position] if OPTION[step.action] == option)
    runner.node.faults.append(Fault(option, reason, nth=runner.node.calls.get(option, 0) + earlier + 1))
    with pytest.raises(ApplyError) as caught:
        smi.apply(Layout.from_dict(TARGET))
    error = caught.value
    assert error.ran == steps[:position]
    assert [failure.reason for failure in error.failure.failures][:1] == [reason]  # type: ignore[attr-defined]
    assert error.rollback_failure is None
    assert error.state == starting
    assert smi.export() == starting
    assert (len(error.restored) > 0) == (position > 0)
    assert "steps that ran before the failure" in str(error)


def test_without_rollback_the_state_is_reported() -> None:
    smi, runner = node([])
    runner.node.faults.append(Fault("-cgi", "Insufficient Resources", nth=runner.node.calls.get("-cgi", 0) + 1))
    with pytest.raises(ApplyError) as caught:
        smi.apply(Layout.from_dict(TARGET), rollback=False)
    assert caught.value.restored == ()
    assert [str(step) for step in caught.value.ran] == [
        "nvidia-smi mig -i 0 -gi 1,2 -dci",
        "nvidia-smi mig -i 0 -gi 1,2 -dgi",
    ]
    assert caught.value.state == smi.export()
    assert "no rollback was asked for" in str(caught.value)
