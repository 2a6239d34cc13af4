"""apply never leaves a GPU half-changed: whatever stops it at whichever step (nvidia-smi refusing, a timeout,
output smimig cannot read, Ctrl-C; before or after nvidia-smi did the work), the start comes back; and the
rollback destroys only what apply created, checked against the node (interleavings of another client run
deterministically through a FakeRunner handler over the simulator)."""

from __future__ import annotations

from typing import Callable

import pytest

import smimig
from smimig import ApplyError, Layout, NvidiaSmiTimeout, ParseError
from smimig.sim import Fault, SimulatedRunner
from smimig.testing import Answer, FakeRunner

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


# -- whatever stops apply, at every step: the node comes back, and ApplyError lists what ran ----------------

MUTATING = ("-dci", "-dgi", "-cgi", "-cci", "-mig")


class StopAt:
    """A FakeRunner handler: the simulator's answers, except at the ``nth`` mutating call, where ``stop``
    answers instead (it may run the call on the simulator first: a step that ran, whose answer was lost)."""

    def __init__(self, runner: SimulatedRunner, nth: int, stop: Callable[[SimulatedRunner, tuple[str, ...]], Answer]):
        self.runner, self.nth, self.stop, self.count = runner, nth, stop, 0

    def __call__(self, args: tuple[str, ...]) -> Answer:
        if any(option in args for option in MUTATING):
            self.count += 1
            if self.count == self.nth:
                return self.stop(self.runner, args)
        return self.runner.run(args)


def _ran_then(answer: Answer) -> Callable[[SimulatedRunner, tuple[str, ...]], Answer]:
    def stop(runner: SimulatedRunner, args: tuple[str, ...]) -> Answer:
        runner.run(args)  # nvidia-smi did its work; smimig never learns what it was
        return answer

    return stop


def _timeout(runner: SimulatedRunner, args: tuple[str, ...]) -> Answer:
    return NvidiaSmiTimeout(["nvidia-smi", *args], 60.0)


STOPS: dict[str, tuple[Callable[[SimulatedRunner, tuple[str, ...]], Answer], type[BaseException]]] = {
    "timeout before it ran": (_timeout, NvidiaSmiTimeout),
    "timeout after it ran": (_ran_then(NvidiaSmiTimeout(["nvidia-smi"], 60.0)), NvidiaSmiTimeout),
    "output it cannot read": (_ran_then(""), ParseError),  # exit 0, nothing printed
    "Ctrl-C before it ran": (lambda runner, args: KeyboardInterrupt(), KeyboardInterrupt),
    "Ctrl-C after it ran": (_ran_then(KeyboardInterrupt()), KeyboardInterrupt),
}


@pytest.mark.parametrize("position", range(8))
@pytest.mark.parametrize("stop", list(STOPS))
def test_whatever_stops_apply_the_rollback_restores_the_start(position: int, stop: str) -> None:
    _, runner = node()
    starting = smimig.Smi(runner=runner).export()
    steps = smimig.Smi(runner=runner).plan(Layout.from_dict(TARGET)).steps
    answer, kind = STOPS[stop]
    smi = smimig.Smi(runner=FakeRunner(handler=StopAt(runner, position + 1, answer)))
    with pytest.raises(ApplyError) as caught:
        smi.apply(Layout.from_dict(TARGET))
    error = caught.value
    assert isinstance(error.failure, kind)
    assert error.ran == steps[:position]
    assert (error.rollback_failure, error.left) == (None, ())
    assert error.state == starting
    assert smi.export() == starting
    assert f"steps that ran before {'it' if error.interrupted else 'the failure'} ({position}):" in str(error)


def test_unreadable_create_output_is_worked_out_from_the_node() -> None:
    _, runner = node()
    starting = smimig.Smi(runner=runner).export()
    smi = smimig.Smi(runner=FakeRunner(handler=StopAt(runner, 3, _ran_then(""))))  # the first -cgi
    with pytest.raises(ApplyError) as caught:
        smi.apply(Layout.from_dict(TARGET))
    assert [str(step) for step in caught.value.restored] == [
        "nvidia-smi mig -i 0 -gi 1,2 -ci 0 -dci",  # exactly the two 1g.5gb the lost -cgi made, and their CIs
        "nvidia-smi mig -i 0 -gi 1,2 -dgi",
        "nvidia-smi mig -i 0 -cgi 4g.20gb:0,2g.10gb:4 -C",
    ]
    assert smi.export() == starting


# -- it destroys only what it created -----------------------------------------------------------------------

SHARED_START = {0: [{"profile": "4g.20gb", "placement": 0}, {"profile": "2g.10gb", "placement": 4}]}
SHARED_TARGET = {
    0: [
        {"profile": "3g.20gb", "placement": 0, "cis": ["2c.3g.20gb", "1c.3g.20gb"]},
        {"profile": "1g.5gb", "placement": 4},
        {"profile": "1g.5gb", "placement": 5},
    ]
}


class AnotherClient:
    """A FakeRunner handler: the simulator's answers; right after apply's ``after``-th mutating call, another
    client runs ``extra`` on the same node; apply's ``fail``-th mutating call is refused."""

    def __init__(self, runner: SimulatedRunner, after: int, extra: list[list[str]], fail: int) -> None:
        self.runner, self.after, self.extra, self.fail, self.count = runner, after, extra, fail, 0

    def __call__(self, args: tuple[str, ...]) -> Answer:
        if not any(option in args for option in MUTATING):
            return self.runner.run(args)
        self.count += 1
        if self.count == self.fail:
            return (255, "", f"Unable to create a compute instance on GPU {args[2]}: Insufficient Resources\n")
        result = self.runner.run(args)
        if self.count == self.after:
            for call in self.extra:
                assert self.runner.run(call).returncode == 0
        return result


def shared_node(after: int, extra: list[list[str]], fail: int) -> tuple[smimig.Smi, SimulatedRunner]:
    runner = SimulatedRunner("A100-40GB", gpus=1, mig=True)
    smimig.Smi(runner=runner).apply(Layout.from_dict(SHARED_START))
    return smimig.Smi(runner=FakeRunner(handler=AnotherClient(runner, after, extra, fail))), runner


def test_an_instance_another_client_created_meanwhile_survives_the_rollback() -> None:
    # apply destroys both GPU instances (steps 1-2); another client then takes slice 6; apply's -cci fails.
    smi, runner = shared_node(after=2, extra=[["mig", "-i", "0", "-cgi", "1g.5gb:6", "-C"]], fail=5)
    steps = smi.plan(Layout.from_dict(SHARED_TARGET)).steps
    assert [step.action for step in steps] == ["destroy-ci", "destroy-gi", "create-gi", "create-gi", "create-ci"]
    with pytest.raises(ApplyError) as caught:
        smi.apply(Layout.from_dict(SHARED_TARGET))
    error = caught.value
    others = Layout.from_dict({0: [*SHARED_START[0], {"profile": "1g.5gb", "placement": 6}]})
    assert smi.export() == others  # the start, and the other client's instance: still there
    assert error.state == others
    assert error.ran == steps[:4]
    assert (error.rollback_failure, error.left) == (None, ())
    (theirs,) = [gi for gi in smimig.Smi(runner=runner).list_gis() if gi.placement.start == 6]
    assert [ci.gi for ci in smimig.Smi(runner=runner).list_cis(0)].count(theirs.id) == 1


def test_an_instance_apply_created_that_another_client_replaced_is_left() -> None:
    # apply creates GIs 1 and 2 (1g.5gb at 4 and 5, step 3); another client destroys GI 2 and makes a 1g.5gb
    # at slice 6, which gets id 2; apply's -cci fails. GI 2 is not apply's any more: the rollback leaves it.
    replace = [
        ["mig", "-i", "0", "-gi", "2", "-dci"],
        ["mig", "-i", "0", "-gi", "2", "-dgi"],
        ["mig", "-i", "0", "-cgi", "1g.5gb:6"],
    ]
    smi, runner = shared_node(after=3, extra=replace, fail=5)
    with pytest.raises(ApplyError) as caught:
        smi.apply(Layout.from_dict(SHARED_TARGET))
    error = caught.value
    assert [(gi.id, gi.short_name, gi.placement.start) for gi in smimig.Smi(runner=runner).list_gis()] == [
        (1, "4g.20gb", 0),
        (2, "1g.5gb", 6),  # the other client's, with apply's old id
        (3, "2g.10gb", 4),
    ]
    assert error.rollback_failure is None
    assert error.left == ("GPU 0: GPU instance 2 (1g.5gb at 5): apply created it, but what has its id now is another",)
    assert "left as it is: GPU 0: GPU instance 2 (1g.5gb at 5)" in str(error)


def test_a_rollback_keeps_out_of_a_compute_instance_someone_put_in_its_gpu_instance() -> None:
    # after apply's 3g.20gb GI is made (step 4), another client puts a CI in it; then apply's -cci fails.
    smi, runner = shared_node(after=4, extra=[["mig", "-i", "0", "-gi", "3", "-cci", "1c.3g.20gb"]], fail=5)
    with pytest.raises(ApplyError) as caught:
        smi.apply(Layout.from_dict(SHARED_TARGET))
    error = caught.value
    assert [(ci.gi, ci.id) for ci in smimig.Smi(runner=runner).list_cis(0)] == [(3, 0)]  # theirs, untouched
    assert error.left == (
        "GPU 0: GPU instance 3 (3g.20gb at 0): apply created it, but it holds compute instance(s) 0 of someone else",
    )
    assert error.rollback_failure is not None  # its place is taken: the 4g.20gb cannot be made again


def test_a_create_that_failed_part_way_counts_what_it_completed() -> None:
    _, runner = node()
    starting = smimig.Smi(runner=runner).export()

    def half(runner: SimulatedRunner, args: tuple[str, ...]) -> Answer:  # -cgi 1g.5gb:4,1g.5gb:5 -C
        made = runner.run(["mig", "-i", "0", "-cgi", "1g.5gb:4", "-C"]).stdout
        refused = "Unable to create a GPU instance on GPU  0 using profile 1g.5gb:5: Insufficient Resources\n"
        return (255, made + refused + "Failed to create GPU instances: Insufficient Resources\n", "")

    smi = smimig.Smi(runner=FakeRunner(handler=StopAt(runner, 3, half)))
    with pytest.raises(ApplyError) as caught:
        smi.apply(Layout.from_dict(TARGET))
    error = caught.value
    assert [gi.id for gi in error.failure.completed] == [1]  # type: ignore[attr-defined]
    assert [str(step) for step in error.restored] == [
        "nvidia-smi mig -i 0 -gi 1 -ci 0 -dci",
        "nvidia-smi mig -i 0 -gi 1 -dgi",
        "nvidia-smi mig -i 0 -cgi 4g.20gb:0,2g.10gb:4 -C",
    ]
    assert smi.export() == starting
