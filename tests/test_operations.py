"""The write side: exact argv, returned models, partial failures, permissions, validation."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest

import smimig
from smimig import (
    CreatedComputeInstance,
    CreatedGpuInstance,
    DestroyedComputeInstance,
    DestroyedGpuInstance,
    MigModeChange,
    OperationFailure,
    Placement,
)
from smimig.runner import ENV_VAR
from tests.fixtures import FIXTURES, text_of

SMI = "/opt/fake/nvidia-smi"


@pytest.fixture
def smi(monkeypatch: pytest.MonkeyPatch) -> smimig.Smi:
    monkeypatch.setenv(ENV_VAR, SMI)
    monkeypatch.setattr("smimig.client._default", None)
    return smimig.Smi()


def register(fp: Any, args: list[str], fixture: str, returncode: int | None = None) -> None:
    """Answer ``args`` with a fixture's text and (for synthetic ones) the exit code its .json gives."""
    if returncode is None:
        spec = FIXTURES / fixture.replace(".txt", ".json")
        returncode = json.loads(spec.read_text()).get("returncode", 0) if spec.exists() else 0
    fp.register([SMI, *args], stdout=text_of(fixture), returncode=returncode)


def gi(gi_id: int, *cis: CreatedComputeInstance) -> CreatedGpuInstance:
    return CreatedGpuInstance(gpu=0, id=gi_id, profile_name="MIG 2g.12gb", profile_id=5, compute_instances=cis)


def ci(gi_id: int, ci_id: int, name: str = "MIG 1c.2g.12gb", profile_id: int = 0) -> CreatedComputeInstance:
    return CreatedComputeInstance(gpu=0, gi=gi_id, id=ci_id, profile_name=name, profile_id=profile_id)


def test_seed_walkthrough_from_python(fp: Any, smi: smimig.Smi) -> None:
    """The seed's whole walk-through, every step asserted; destroy outputs are synthetic (never recorded)."""
    a30 = "a30-driver545/"
    register(fp, ["-i", "0", "-mig", "1"], a30 + "mig1.txt")
    assert smimig.enable_mig(0) == [MigModeChange(gpu=0, bus_id="00000000:17:00.0", enabled=True)]

    register(fp, ["mig", "-i", "0", "-cgi", "5,5"], a30 + "cgi-5-5.txt")
    assert smimig.create_gi(0, ["5", "5"]) == [gi(1), gi(2)]

    register(fp, ["mig", "-i", "0", "-lgi"], a30 + "lgi.txt")
    assert [(g.id, g.placement) for g in smimig.list_gis(0)] == [(1, Placement(0, 2)), (2, Placement(2, 2))]

    register(fp, ["mig", "-lci"], a30 + "lci-none.txt")
    assert smimig.list_cis() == []

    register(fp, ["mig", "-dgi"], "synthetic/a30-dgi.txt")
    assert smimig.destroy_gi() == [DestroyedGpuInstance(0, 1), DestroyedGpuInstance(0, 2)]

    register(fp, ["mig", "-i", "0", "-cgi", "5,5", "-C"], a30 + "cgi-5-5-C.txt")
    created = smimig.create_gi(0, ["5", "5"], ci=True)
    assert created == [gi(1, ci(1, 0, "MIG 2g.12gb", 1)), gi(2, ci(2, 0, "MIG 2g.12gb", 1))]

    register(fp, ["-L"], a30 + "L-two-cis.txt")
    (gpu0, *_others) = smimig.list_gpus()
    assert [device.uuid for device in gpu0.mig_devices] == [
        "MIG-89b757f7-3c4c-5b1c-9476-a11b14aa9308",
        "MIG-6df26cf8-a984-58d3-978e-acb0c808d513",
    ]

    register(fp, ["mig", "-dci"], "synthetic/a30-dci.txt")
    assert smimig.destroy_ci() == [DestroyedComputeInstance(0, 1, 0), DestroyedComputeInstance(0, 2, 0)]

    register(fp, ["mig", "-i", "0", "-gi", "1", "-cci", "0,0"], a30 + "cci-0-0-gi1.txt")
    assert smimig.create_ci(0, 1, ["0", "0"]) == [ci(1, 0), ci(1, 1)]
    register(fp, ["mig", "-i", "0", "-gi", "2", "-cci", "0,0"], a30 + "cci-0-0-gi2.txt")
    assert smimig.create_ci(0, 2, [0, 0]) == [ci(2, 0), ci(2, 1)]

    register(fp, ["mig", "-lci"], a30 + "lci.txt")
    assert [(c.gi, c.id, c.placement) for c in smimig.list_cis()] == [
        (1, 0, Placement(0, 1)),
        (1, 1, Placement(1, 1)),
        (2, 0, Placement(0, 1)),
        (2, 1, Placement(1, 1)),
    ]
    register(fp, ["-L"], a30 + "L-four-cis.txt")
    assert [(d.index, d.name, d.uuid) for d in smimig.list_gpus(0)[0].mig_devices] == [
        (0, "MIG 1c.2g.12gb", "MIG-89b757f7-3c4c-5b1c-9476-a11b14aa9308"),
        (1, "MIG 1c.2g.12gb", "MIG-bdf043cc-8668-599c-95b0-5b640d416440"),
        (2, "MIG 1c.2g.12gb", "MIG-6df26cf8-a984-58d3-978e-acb0c808d513"),
        (3, "MIG 1c.2g.12gb", "MIG-6f79e1f8-f1ed-5121-976a-4ff3f0df8634"),
    ]

    register(fp, ["mig", "-dci"], "synthetic/a30-dci-four.txt")
    assert smimig.destroy_ci() == [DestroyedComputeInstance(0, gi, ci) for gi in (1, 2) for ci in (0, 1)]
    register(fp, ["mig", "-dgi"], "synthetic/a30-dgi.txt")
    assert [g.id for g in smimig.destroy_gi()] == [1, 2]
    assert len(fp.calls) == 14


def test_recorded_a100_create(fp: Any, smi: smimig.Smi) -> None:
    register(fp, ["mig", "-i", "0", "-cgi", "3g.40gb,3g.40gb"], "a100-80gb-pcie-driver515/cgi.txt")
    assert [(g.id, g.profile_name, g.profile_id) for g in smi.create_gi(0, ["3g.40gb", "3g.40gb"])] == [
        (1, "MIG 3g.40gb", 9),
        (2, "MIG 3g.40gb", 9),
    ]
    register(
        fp,
        ["mig", "-i", "0", "-gi", "1", "-cci", "1c.3g.40gb,1c.3g.40gb"],
        "a100-80gb-pcie-driver515/cci.txt",
    )
    assert [(c.gi, c.id, c.profile_id) for c in smi.create_ci(0, 1, ["1c.3g.40gb", "1c.3g.40gb"])] == [
        (1, 0, 0),
        (1, 1, 0),
    ]


def test_pending_enable_is_reported_not_raised(fp: Any, smi: smimig.Smi) -> None:
    register(fp, ["-i", "0", "-mig", "1"], "a100-80gb-pcie-driver515/mig1-pending-inuse.txt")
    (change,) = smi.enable_mig(0)
    assert (change.gpu, change.bus_id, change.enabled, change.pending) == (0, "00000001:00:00.0", True, True)
    assert change.reason == "In use by another client"
    assert change.warnings[0].startswith("00000001:00:00.0 is currently being used")


def test_disable_keeps_the_persistence_warning(fp: Any, smi: smimig.Smi) -> None:
    register(fp, ["-i", "0", "-mig", "0"], "a100-80gb-pcie-driver515/mig0-disable-persistence-warning.txt")
    (change,) = smi.disable_mig(0)
    assert (change.enabled, change.pending) == (False, False)
    assert change.warnings[0].startswith("Warning: persistence mode is disabled on device 00000001:00:00.0.")


def test_mode_change_runs_one_gpu_at_a_time(fp: Any, smi: smimig.Smi) -> None:
    register(fp, ["-i", "0", "-mig", "1"], "a30-driver545/mig1.txt")
    register(fp, ["-i", "1", "-mig", "1"], "synthetic/mig1-not-supported.txt")
    with pytest.raises(smimig.MigOperationError) as caught:
        smi.enable_mig([0, 1])
    error = caught.value
    assert error.completed == (MigModeChange(gpu=0, bus_id="00000000:17:00.0", enabled=True),)
    assert [failure.reason for failure in error.failures] == ["Not Supported"]
    assert error.returncode == 0
    assert "Not Supported" in str(error)


def test_mode_change_needs_explicit_gpus(fp: Any, smi: smimig.Smi) -> None:
    with pytest.raises(ValueError, match="gpu"):
        smi.enable_mig(None)  # type: ignore[arg-type]
    assert list(fp.calls) == []


# -- partial success and failures -------------------------------------------------------------------


def test_partial_create_reports_what_was_created(fp: Any, smi: smimig.Smi) -> None:
    register(fp, ["mig", "-i", "0", "-cgi", "5,5,0"], "synthetic/a30-cgi-5-5-0-insufficient.txt")
    with pytest.raises(smimig.MigOperationError) as caught:
        smi.create_gi(0, [5, 5, 0])
    error = caught.value
    assert isinstance(error, smimig.NvidiaSmiError)
    assert error.completed == (gi(1), gi(2))
    assert error.failures[0] == OperationFailure(
        message="Unable to create a GPU instance on GPU  0 using profile 0: Insufficient Resources",
        reason="Insufficient Resources",
        gpu=0,
        profile="0",
    )
    assert (error.args_list, error.returncode) == ([SMI, "mig", "-i", "0", "-cgi", "5,5,0"], 255)
    assert error.stdout == text_of("synthetic/a30-cgi-5-5-0-insufficient.txt")
    assert "completed before the failure" in str(error)


def test_partial_create_ci(fp: Any, smi: smimig.Smi) -> None:
    register(fp, ["mig", "-i", "0", "-gi", "1", "-cci", "0,0,0"], "synthetic/a30-cci-0-0-0-insufficient.txt")
    with pytest.raises(smimig.MigOperationError) as caught:
        smi.create_ci(0, 1, [0, 0, 0])
    assert caught.value.completed == (ci(1, 0), ci(1, 1))
    assert caught.value.failures[0].gi == 1


def test_partial_destroy_reports_what_was_destroyed(fp: Any, smi: smimig.Smi) -> None:
    register(fp, ["mig", "-i", "0", "-dgi"], "synthetic/a30-dgi-partial-in-use.txt")
    with pytest.raises(smimig.MigOperationError) as caught:
        smi.destroy_gi(0)
    assert caught.value.completed == (DestroyedGpuInstance(0, 2),)
    assert [(f.gi, f.reason) for f in caught.value.failures] == [
        (1, "In use by another client"),
        (None, "In use by another client"),
    ]


@pytest.mark.parametrize(
    ("fixture", "call", "args", "reason"),
    [
        (
            "synthetic/a30-cgi-invalid.txt",
            ("create_gi", 0, [99]),
            ["mig", "-i", "0", "-cgi", "99"],
            "Invalid Argument",
        ),
        (
            "synthetic/a30-cci-gi9-not-found.txt",
            ("create_ci", 0, 9, [0]),
            ["mig", "-i", "0", "-gi", "9", "-cci", "0"],
            "Not Found",
        ),
        ("synthetic/a30-dgi-none.txt", ("destroy_gi",), ["mig", "-dgi"], "Not Found"),
        (
            "synthetic/a30-dgi-partial-in-use.txt",
            ("destroy_gi", 0),
            ["mig", "-i", "0", "-dgi"],
            "In use by another client",
        ),
        (
            "synthetic/a30-cgi-5-5-0-insufficient.txt",
            ("create_gi", 0, [5, 5, 0]),
            ["mig", "-i", "0", "-cgi", "5,5,0"],
            "Insufficient Resources",
        ),
        ("synthetic/mig1-not-supported.txt", ("enable_mig", 1), ["-i", "1", "-mig", "1"], "Not Supported"),
    ],
)
def test_every_failure_reason_raises(
    fp: Any, smi: smimig.Smi, fixture: str, call: tuple[Any, ...], args: list[str], reason: str
) -> None:
    register(fp, args, fixture)
    name, *call_args = call
    with pytest.raises(smimig.MigOperationError) as caught:
        getattr(smi, name)(*call_args)
    assert reason in [failure.reason for failure in caught.value.failures]
    assert not isinstance(caught.value, smimig.PermissionDenied)


@pytest.mark.parametrize(
    ("fixture", "call", "args"),
    [
        ("synthetic/a30-cgi-permissions.txt", ("create_gi", 0, ["5"]), ["mig", "-i", "0", "-cgi", "5"]),
        ("synthetic/mig1-permissions.txt", ("enable_mig", 0), ["-i", "0", "-mig", "1"]),
    ],
)
def test_insufficient_permissions(
    fp: Any, smi: smimig.Smi, fixture: str, call: tuple[Any, ...], args: list[str]
) -> None:
    register(fp, args, fixture)
    name, *call_args = call
    with pytest.raises(smimig.PermissionDenied) as caught:
        getattr(smi, name)(*call_args)
    assert caught.value.returncode == 4
    assert "sudo=True" in str(caught.value)


def test_pending_after_reset_needed(fp: Any, smi: smimig.Smi) -> None:
    register(fp, ["-i", "0", "-mig", "1"], "synthetic/mig1-pending-reset.txt")
    (change,) = smi.enable_mig(0)
    assert (change.pending, change.reason) == (True, "Not Supported")
    assert "--gpu-reset" in change.warnings[0]


def test_unknown_failure_text_keeps_everything(fp: Any, smi: smimig.Smi) -> None:
    fp.register([SMI, "mig", "-i", "0", "-cgi", "5"], stdout="", stderr="Segmentation fault\n", returncode=139)
    with pytest.raises(smimig.MigOperationError) as caught:
        smi.create_gi(0, [5])
    assert (caught.value.returncode, caught.value.stderr, caught.value.completed) == (
        139,
        "Segmentation fault\n",
        (),
    )


def test_unrecognised_success_line_is_not_dropped(fp: Any, smi: smimig.Smi) -> None:
    fp.register([SMI, "mig", "-i", "0", "-cgi", "5"], stdout="Created something new\n")
    with pytest.raises(smimig.ParseError):
        smi.create_gi(0, [5])


# -- argv and validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profiles", "expected"),
    [
        ([5, "5"], "5,5"),
        (["2g.12gb", "1g.6gb+me"], "2g.12gb,1g.6gb+me"),
        (["MIG 2g.12gb", 14, "1g.6gb"], "MIG 2g.12gb,14,1g.6gb"),
        (["9:0", ("9", 4), ("3g.40gb", Placement(4, 4))], "9:0,9:4,3g.40gb:4"),
        (["1g.10gb+me", "7g.141gb", "1g.18gb+me.all"], "1g.10gb+me,7g.141gb,1g.18gb+me.all"),
    ],
)
def test_create_gi_argv(fp: Any, smi: smimig.Smi, profiles: list[Any], expected: str) -> None:
    fp.register([SMI, "mig", "-i", "0", "-cgi", expected], stdout=text_of("a30-driver545/cgi-5-5.txt"))
    smi.create_gi(0, profiles)
    assert fp.call_count([SMI, "mig", "-i", "0", "-cgi", expected]) == 1


def test_create_ci_default_profile_argv(fp: Any, smi: smimig.Smi) -> None:
    fp.register([SMI, "mig", "-i", "0", "-gi", "1", "-cci"], stdout=text_of("a30-driver545/cci-0-0-gi1.txt"))
    assert len(smi.create_ci(0, 1)) == 2


def test_destroy_selectors_argv(fp: Any, smi: smimig.Smi) -> None:
    fp.register([SMI, "mig", "-i", "0", "-gi", "1", "-ci", "0,1", "-dci"], stdout=text_of("synthetic/a30-dci.txt"))
    fp.register([SMI, "mig", "-i", "0", "-gi", "1,2", "-dgi"], stdout=text_of("synthetic/a30-dgi.txt"))
    assert smi.destroy_ci(0, gi=1, ci=[0, 1]) == [DestroyedComputeInstance(0, 1, 0), DestroyedComputeInstance(0, 2, 0)]
    assert smi.destroy_gi(0, gi=[1, 2]) == [DestroyedGpuInstance(0, 1), DestroyedGpuInstance(0, 2)]
    assert len(fp.calls) == 2


BAD_PROFILES: list[Any] = [
    ["5,7"],
    ["5 -dgi"],
    ["$(x)"],
    ["2g.12gb; rm -rf /"],
    [""],
    [-1],
    [True],
    [5.0],
    ["MIG  2g.12gb"],
    ["9:"],
    [("9", -1)],
    [("9", 0, 1)],
    [("5,7", 0)],
    "5",
    [],
    ("5", "5"),
    ["\uff15"],  # a fullwidth 5: a digit to Python, not to nvidia-smi
    ["1g.\uff11\uff10gb"],
    ["9:\u0663"],
]


@pytest.mark.parametrize("profiles", BAD_PROFILES, ids=repr)
def test_bad_profiles_never_start_a_process(fp: Any, smi: smimig.Smi, profiles: Any) -> None:
    with pytest.raises(ValueError, match="profile"):
        smi.create_gi(0, profiles)
    assert list(fp.calls) == []


@pytest.mark.parametrize("profiles", [["1c.2g.12gb:0"], ["0,0"], [""], "0", [-3]], ids=repr)
def test_bad_ci_profiles_never_start_a_process(fp: Any, smi: smimig.Smi, profiles: Any) -> None:
    with pytest.raises(ValueError, match="profile"):
        smi.create_ci(0, 1, profiles)
    assert list(fp.calls) == []


@pytest.mark.parametrize(
    "call",
    [
        ("create_gi", -1, [5]),
        ("create_gi", None, [5]),
        ("create_gi", [0, 1], [5]),
        ("create_gi", 0, [5], "yes"),
        ("create_ci", 0, -1),
        ("create_ci", True, 1),
        ("destroy_ci", 0, -1),
        ("destroy_ci", 0, 1, "0"),
        ("destroy_gi", "0"),
        ("enable_mig", -1),
        ("disable_mig", [0, "1"]),
    ],
    ids=repr,
)
def test_bad_ids_never_start_a_process(fp: Any, smi: smimig.Smi, call: tuple[Any, ...]) -> None:
    name, *args = call
    with pytest.raises(ValueError, match=r"gpu|gi|ci"):
        getattr(smi, name)(*args)
    assert list(fp.calls) == []


def test_errors_pickle_with_their_fields(fp: Any, smi: smimig.Smi) -> None:
    register(fp, ["mig", "-i", "0", "-cgi", "5,5,0"], "synthetic/a30-cgi-5-5-0-insufficient.txt")
    with pytest.raises(smimig.MigOperationError) as caught:
        smi.create_gi(0, [5, 5, 0])
    copy = pickle.loads(pickle.dumps(caught.value))  # noqa: S301  # our own object
    assert (copy.completed, copy.failures, copy.returncode) == (
        caught.value.completed,
        caught.value.failures,
        255,
    )


def test_warnings_and_unknown_lines_on_success_are_kept(fp: Any, smi: smimig.Smi) -> None:
    stdout = text_of("a30-driver545/cgi-5-5.txt") + "Warning: something odd\nNote: a line from a newer driver\n"
    fp.register([SMI, "mig", "-i", "0", "-cgi", "5,5"], stdout=stdout)
    created = smi.create_gi(0, [5, 5])
    assert created == [gi(1), gi(2)]
    assert created.warnings == ("Warning: something odd", "Note: a line from a newer driver")


def test_unknown_lines_with_a_failure_keep_what_was_done(fp: Any, smi: smimig.Smi) -> None:
    stdout = text_of("a30-driver545/cgi-5-5.txt") + "Something went sideways\n"
    fp.register([SMI, "mig", "-i", "0", "-cgi", "5,5,0"], stdout=stdout, returncode=255)
    with pytest.raises(smimig.MigOperationError) as caught:
        smi.create_gi(0, [5, 5, 0])
    assert caught.value.completed == (gi(1), gi(2))
    assert "Something went sideways" in caught.value.reason


def test_mode_change_answer_must_match_the_question(fp: Any, smi: smimig.Smi) -> None:
    fp.register([SMI, "-i", "0", "-mig", "1"], stdout="Disabled MIG Mode for GPU 00000000:17:00.0\nAll done.\n")
    with pytest.raises(smimig.MigOperationError, match="expected one 'MIG mode on' result"):
        smi.enable_mig(0)


def test_unknown_output_after_an_earlier_gpu_changed(fp: Any, smi: smimig.Smi) -> None:
    register(fp, ["-i", "0", "-mig", "1"], "a30-driver545/mig1.txt")
    fp.register([SMI, "-i", "1", "-mig", "1"], stdout="Something new\n")
    with pytest.raises(smimig.MigOperationError) as caught:
        smi.enable_mig([0, 1])
    assert caught.value.completed == (MigModeChange(gpu=0, bus_id="00000000:17:00.0", enabled=True),)
