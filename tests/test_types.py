"""Types that say what they hold: immutable layouts checked when built, closed sets of values, typed errors."""

from __future__ import annotations

import pickle

import pytest

import smimig
from smimig import GiSpec, Layout, LayoutError
from smimig.diagnostics import Finding
from smimig.models import CreatedGpuInstance, OperationFailure
from smimig.planner import Step


def test_a_layout_is_checked_and_converted_whichever_constructor_builds_it() -> None:
    built = Layout({0: ["3g.20gb", "1g.5gb:6"], "1": None})
    assert built == Layout.from_dict({"gpus": {"0": ["3g.20gb", {"profile": "1g.5gb", "placement": 6}], 1: None}})
    assert built.gpus[0] == (GiSpec("3g.20gb"), GiSpec("1g.5gb", 6))
    assert list(built.gpus) == [0, 1]
    with pytest.raises(LayoutError, match="not a GPU index"):
        Layout({-1: []})
    with pytest.raises(LayoutError, match="not a GPU instance"):
        Layout({0: [True]})
    with pytest.raises(LayoutError, match="named twice"):
        Layout({0: ["1g.5gb"], "0": []})  # YAML's 0 and '0': refused, not "last one wins"


def test_a_layout_is_immutable_and_hashable() -> None:
    layout = Layout({0: ["3g.20gb"], 1: None})
    assert hash(layout) == hash(Layout({1: None, 0: ("3g.20gb",)}))
    assert {layout: "seen"}[Layout({0: ["3g.20gb"], 1: None})] == "seen"
    with pytest.raises(TypeError):
        layout.gpus[0] = None  # type: ignore[index]
    with pytest.raises(AttributeError):
        layout.gpus = {}  # type: ignore[misc, assignment]
    assert layout.gpus == {0: (GiSpec("3g.20gb"),), 1: None}  # still compares with a plain dict


def test_a_step_is_one_of_the_six_actions() -> None:
    assert str(Step("enable-mig", 0)) == "nvidia-smi -i 0 -mig 1"
    with pytest.raises(ValueError, match="action"):
        Step("create-everything", 0)  # type: ignore[arg-type]


def test_a_finding_is_ok_or_attention() -> None:
    assert str(Finding("attention", "GPU 0 needs a reset")) == "!!  GPU 0 needs a reset"
    with pytest.raises(ValueError, match="level"):
        Finding("warning", "?")  # type: ignore[arg-type]


def test_operation_errors_say_what_they_completed_and_survive_pickling() -> None:
    created = CreatedGpuInstance(gpu=0, id=1, profile_name="MIG 1g.5gb", profile_id=19)
    error: smimig.MigOperationError[CreatedGpuInstance] = smimig.MigOperationError(
        ["nvidia-smi", "mig", "-cgi", "19,19"],
        255,
        "",
        "",
        completed=[created],
        failures=[OperationFailure(message="Unable to create …", reason="Insufficient Resources", gpu=0)],
    )
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301  # our own object, round-tripped
    assert (copy.completed, copy.failures, copy.returncode) == (error.completed, error.failures, 255)
    assert copy.completed[0].id == 1
