"""The simulator: the seed's walk-through replayed byte for byte, the H100, H200, RTX PRO 6000 and A100 80GB
recordings, its rules, the API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import smimig
from smimig import Placement, parsers
from smimig.sim import SimulatedRunner, node_state_path, parse_node_spec
from tests.fixtures import FIXTURES, text_of

A30 = "a30-driver545/"
_TIMESTAMP = re.compile(r"\A[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8} [0-9]{4} *\n")


def recorded(relative: str) -> str:
    """A recording under fixtures/ (each a byte-for-byte copy of one in shared/realdata)."""
    return (FIXTURES / relative).read_text(encoding="utf-8")


def masked(text: str) -> str:
    """Temperatures and power draw vary between the seed's recordings: compare them masked (same width).

    The timestamp line real tables start with (the simulator prints none) is left out.
    """
    text = _TIMESTAMP.sub("", text)
    text = re.sub(r"(?<=\s)\d\dC(?=\s)", "##C", text)
    return re.sub(r"\d\dW / ", "##W / ", text)


# (nvidia-smi arguments, fixture, how it compares): "exact", "prefix" (the seed's table stops before the
# Processes box the simulator also prints) or "contains" (the post kept only the MIG devices box).
SEED_WALKTHROUGH = [
    (["-L"], "L-mig-off.txt", "exact"),
    ([], "table-mig-off.txt", "prefix"),
    (["-i", "0", "-mig", "1"], "mig1.txt", "exact"),
    ([], "table-mig-on-no-devices.txt", "prefix"),
    (["mig", "-lgip"], "lgip.txt", "exact"),
    (["mig", "-lgipp"], "lgipp.txt", "exact"),
    (["mig", "-cgi", "5,5"], "cgi-5-5.txt", "exact"),
    (["mig", "-lgi"], "lgi.txt", "exact"),
    (["mig", "-lci"], "lci-none.txt", "exact"),
    (["-L"], "L-gis-no-cis.txt", "exact"),
    (["mig", "-dgi"], None, ""),
    (["mig", "-cgi", "5,5", "-C"], "cgi-5-5-C.txt", "exact"),
    (["-L"], "L-two-cis.txt", "exact"),
    ([], "table-two-cis.txt", "prefix"),
    (["mig", "-dci"], None, ""),
    (["mig", "-lcip"], "lcip.txt", "exact"),
    (["mig", "-lgi"], "lgi-again.txt", "exact"),
    (["mig", "-cci", "0,0", "-gi", "1"], "cci-0-0-gi1.txt", "exact"),
    (["mig", "-cci", "0,0", "-gi", "2"], "cci-0-0-gi2.txt", "exact"),
    (["mig", "-lci"], "lci.txt", "exact"),
    (["-L"], "L-four-cis.txt", "exact"),
    ([], "table-four-cis-mig-section.txt", "contains"),
]


def test_seed_walkthrough_byte_for_byte() -> None:
    runner = SimulatedRunner("A30", gpus=4)
    for args, fixture, how in SEED_WALKTHROUGH:
        result = runner.run(args)
        if fixture is None:
            assert result.returncode == 0, args
            continue
        expected = masked(text_of(A30 + fixture))
        printed = masked(result.stdout)
        if how == "exact":
            assert printed == expected, args
        elif how == "prefix":
            assert printed.startswith(expected), args
        else:
            assert expected in printed, args
        runner.node.check()


@pytest.mark.parametrize("name", ["lgip", "lgipp"])
def test_h100_listings_byte_for_byte(name: str) -> None:
    result = SimulatedRunner("H100-80GB").run(["mig", f"-{name}"])
    assert result.stdout == text_of(f"h100-80gb-driver580/{name}.stdout")
    assert result.returncode == 0


def test_h100_mig_off_listings_as_recorded() -> None:
    runner = SimulatedRunner("H100-80GB")
    for name in ("lgi", "lci", "lcip"):
        result = runner.run(["mig", f"-{name}"])
        assert (result.returncode, result.stdout) == (0, text_of(f"h100-80gb-driver580/{name}.stdout"))
    assert runner.run(["-L"]).stdout == text_of("h100-80gb-driver580/L.stdout")
    for name, args in [
        ("lgip_i9", ["mig", "-i", "9", "-lgip"]),
        ("bogus", ["mig", "-bogus"]),
        ("L_i9", ["-L", "-i", "9"]),
    ]:
        result = runner.run(args)
        expected_rc = int(text_of(f"h100-80gb-driver580/{name}.rc"))
        assert (result.returncode, result.stdout) == (
            expected_rc,
            text_of(f"h100-80gb-driver580/{name}.stdout"),
        )


QUERY = ["--query-gpu=index,name,uuid,pci.bus_id,mig.mode.current,mig.mode.pending", "--format=csv"]
# (model, recording, nvidia-smi arguments): a fresh 1-GPU node answers exactly as recorded.
DRIVER_580_CAPTURES = [
    ("H100-80GB", "h100-80gb-driver580/query_mig.stdout", QUERY),
    ("H100-80GB", "h100-80gb-driver580/version.stdout", ["--version"]),
    ("H200-141GB", "h200-141gb-driver580/L.txt", ["-L"]),
    ("H200-141GB", "h200-141gb-driver580/lgip.txt", ["mig", "-lgip"]),
    ("H200-141GB", "h200-141gb-driver580/lgipp.txt", ["mig", "-lgipp"]),
    ("H200-141GB", "h200-141gb-driver580/lci.txt", ["mig", "-lci"]),
    ("H200-141GB", "h200-141gb-driver580/lcip.txt", ["mig", "-lcip"]),
    ("H200-141GB", "h200-141gb-driver580/query_mig.txt", QUERY),
    ("H200-141GB", "h200-141gb-driver580/version.txt", ["--version"]),
]


@pytest.mark.parametrize(("model", "recording", "args"), DRIVER_580_CAPTURES)
def test_driver_580_captures_byte_for_byte(model: str, recording: str, args: list[str]) -> None:
    result = SimulatedRunner(model).run(args)
    assert (result.returncode, result.stdout) == (0, recorded(recording))


@pytest.mark.parametrize(
    ("model", "recording"),
    [("H100-80GB", "h100-80gb-driver580/table.stdout"), ("H200-141GB", "h200-141gb-driver580/table.txt")],
)
def test_driver_580_tables_byte_for_byte(model: str, recording: str) -> None:
    """The whole plain table, only the timestamp line, temperature and power draw masked."""
    assert masked(SimulatedRunner(model).run([]).stdout) == masked(recorded(recording))


RTX = "more-profile-tables/rtx-pro-6000-blackwell-driver580-"


@pytest.mark.parametrize("model", ["RTX-PRO-6000", "RTX-PRO-6000-GRID4"])
def test_rtx_pro_6000_recordings(model: str) -> None:
    """Both placement grids print the recorded -lgip and tables: MIG on with no device, then with one 1g
    MIG device in GI 3 (GIs 1 and 2 created and destroyed first), its "Shared" box and truncated name."""
    runner = SimulatedRunner(model, mig=True)

    def same_table(recording: str) -> bool:
        printed, expected = masked(runner.run([]).stdout), masked(recorded(RTX + recording))
        if model != "RTX-PRO-6000":  # another driver: all but the version line as recorded
            printed, expected = (re.sub(r"(?m)^\| NVIDIA-SMI .*\n", "", text) for text in (printed, expected))
        return printed == expected

    assert runner.run(["mig", "-lgip"]).stdout == recorded(RTX + "lgip.txt")
    assert same_table("table-mig-on-no-devices.txt")
    smi = smimig.Smi(runner=runner)
    smi.create_gi(0, ["1g.24gb", "1g.24gb", "1g.24gb"])
    smi.destroy_gi(0, gi=[1, 2])
    smi.create_ci(0, 3)
    assert same_table("table-one-mig-device.txt")


A100_80GB = "a100-80gb-pcie-driver515/"


def test_a100_80gb_walkthrough() -> None:
    """The driver 515 walk-through replayed on the A100-80GB model.

    Byte for byte: the pending ``-mig 1`` (a process holds the GPU), ``-lgip``, ``-cgi 3g.40gb,3g.40gb``,
    ``-lgi`` (GI 1 at 4:4 listed before GI 2 at 0:4, by id), ``-gi 1 -lcip``, ``-cci``, ``-gi 1 -lci`` and
    ``-mig 0`` with its persistence-mode warning. Not byte for byte: the two plain tables, which driver 515
    prints 79 columns wide where the simulator prints driver 545's layout: their "MIG devices" boxes are
    compared through the parser instead (ids, device index, memory and BAR1 used and total, SMs, engines).
    """
    runner = SimulatedRunner("A100-80GB")
    steps: list[tuple[list[str], str]] = [
        (["-i", "0", "-mig", "1"], "mig1-pending-inuse.txt"),
        ([], "table-nomigdevices.txt"),
        (["mig", "-i", "0", "-lgip"], "lgip.txt"),
        (["mig", "-i", "0", "-cgi", "3g.40gb,3g.40gb"], "cgi.txt"),
        (["mig", "-i", "0", "-lgi"], "lgi.txt"),
        (["mig", "-i", "0", "-gi", "1", "-lcip"], "lcip.txt"),
        (["mig", "-i", "0", "-gi", "1", "-cci", "1c.3g.40gb,1c.3g.40gb"], "cci.txt"),
        (["mig", "-i", "0", "-gi", "1", "-lci"], "lci.txt"),
        ([], "table.txt"),
    ]
    runner.add_process(0, pid=4242)
    for args, name in steps:
        result = runner.run(args)
        assert result.returncode == 0, args
        if not args:  # the plain table: driver 515's layout is not reproduced, its MIG devices are
            assert parsers.parse_mig_devices(result.stdout) == parsers.parse_mig_devices(recorded(A100_80GB + name))
        else:
            assert result.stdout == recorded(A100_80GB + name), args
        if name == "mig1-pending-inuse.txt":
            runner.remove_process(4242)
            runner.reset_gpu(0)  # the pending mode takes effect
        runner.node.check()
    assert runner.run(["mig", "-dci"]).returncode == runner.run(["mig", "-dgi"]).returncode == 0
    disabled = runner.run(["-i", "0", "-mig", "0"])
    assert disabled.stdout == recorded(A100_80GB + "mig0-disable-persistence-warning.txt")


def test_every_rendered_table_parses() -> None:
    smi = smimig.Smi(runner=SimulatedRunner("A100-40GB", gpus=2))
    smi.enable_mig([0, 1])
    smi.create_gi(0, ["3g.20gb", "2g.10gb", "1g.5gb", "1g.5gb"], ci=True)
    smi.create_gi(1, ["4g.20gb"], ci=False)
    smi.create_ci(1, 1, ["1c.4g.20gb", "2c.4g.20gb"])
    assert len(smi.list_gi_profiles()) == 14  # 7 profiles of the A100-40GB, on each of 2 GPUs
    assert len(smi.list_gi_placements()) == 14
    assert len(smi.list_gis()) == 5
    assert len(smi.list_ci_profiles()) > 5
    assert len(smi.list_ci_placements(1, gi=1)) == 4
    assert len(smi.list_cis()) == 6
    assert len(smi.list_mig_devices()) == 6
    assert sum(len(gpu.mig_devices) for gpu in smi.list_gpus()) == 6
    assert [mode.current for mode in smi.mig_mode()] == [True, True]


def test_placements_as_recorded_on_the_a100() -> None:
    # realdata A100 80GB: two 3g GIs get ids 1 and 2 at 4:4 and 0:4 (ids not in placement order).
    smi = smimig.Smi(runner=SimulatedRunner("A100-40GB", mig=True))
    smi.create_gi(0, ["3g.20gb", "3g.20gb"])
    assert [(gi.id, gi.placement) for gi in smi.list_gis()] == [(1, Placement(4, 4)), (2, Placement(0, 4))]


def test_rules_and_failures() -> None:
    smi = smimig.Smi(runner=SimulatedRunner("A30", gpus=2))
    assert smi.list_gis() == []  # MIG off: "No MIG-enabled devices found."
    with pytest.raises(smimig.MigOperationError) as off:
        smi.create_gi(0, ["1g.6gb"])
    assert off.value.completed == ()
    smi.enable_mig(0)
    assert smi.list_gis(0) == []  # "No GPU instances found: Not Found" (exit 6) is an empty list
    with pytest.raises(smimig.MigOperationError) as unknown:
        smi.create_gi(0, ["3g.40gb"])
    assert [f.reason for f in unknown.value.failures] == ["Invalid Argument", "Invalid Argument"]
    with pytest.raises(smimig.MigOperationError) as full:
        smi.create_gi(0, ["2g.12gb", "2g.12gb", "1g.6gb"])
    assert [gi.id for gi in full.value.completed] == [1, 2]
    assert full.value.failures[0].reason == "Insufficient Resources"
    assert [p.free for p in smi.list_gi_profiles(0)] == [0, 0, 0, 0, 0]
    smi.create_ci(0, 1)
    with pytest.raises(smimig.MigOperationError) as busy:
        smi.destroy_gi(0, gi=1)
    assert busy.value.failures[0].reason == "In use by another client"
    with pytest.raises(smimig.MigOperationError) as placed:
        smi.create_gi(0, [("1g.6gb", 0)])
    assert placed.value.failures[0].reason == "Insufficient Resources"
    with pytest.raises(smimig.NvidiaSmiError) as missing:
        smi.list_gis(7)
    assert (missing.value.returncode, missing.value.message) == (6, "No devices were found")
    assert [d.id for d in smi.destroy_ci(0)] == [0]
    assert [d.id for d in smi.destroy_gi(0)] == [1, 2]
    assert smi.disable_mig(0)[0].enabled is False


def test_media_engines_are_exclusive() -> None:
    smi = smimig.Smi(runner=SimulatedRunner("A30", mig=True))
    smi.create_gi(0, ["1g.6gb+me"])
    free = {profile.name: profile.free for profile in smi.list_gi_profiles(0)}
    assert free == {
        "MIG 1g.6gb": 3,
        "MIG 1g.6gb+me": 0,
        "MIG 2g.12gb": 1,
        "MIG 2g.12gb+me": 0,
        "MIG 4g.24gb": 0,
    }


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("A30x4", ("A30", 4)),
        ("H100-80GB", ("H100-80GB", 1)),
        ("a100-40gbx2", ("A100-40GB", 2)),  # any case, any alias: the catalog's key, so one node
        ("rtx-pro-6000", ("RTX-PRO-6000", 1)),  # an "x" in the name is not a count
        ("rtxpro6000X3", ("RTX-PRO-6000", 3)),
        ("h200", ("H200-141GB", 1)),
    ],
)
def test_node_spec(spec: str, expected: tuple[str, int]) -> None:
    assert parse_node_spec(spec) == expected


def test_every_spelling_of_a_node_is_one_state_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert node_state_path("a30x4") == node_state_path("A30-24GBx4") == tmp_path / "smimig" / "simulate-A30x4.json"
    assert node_state_path("h200x2") != node_state_path("h200x3")


@pytest.mark.parametrize(
    "spec",
    [
        "V100x2",
        "A30x0",
        "A30x",
        "x4",
        "A30x99",
        "A30x100",
        "A30x" + "9" * 5000,
        "rtx-pro-6000x",
        "B200x\u0663",
        "",
        " ",
        "A30x\u00b2",
    ],
)
def test_bad_node_spec(spec: str) -> None:
    with pytest.raises(ValueError, match=r"node spec|unknown GPU model"):
        parse_node_spec(spec)


def test_runner_is_a_runner() -> None:
    assert isinstance(SimulatedRunner(), smimig.Runner)
    assert parsers.parse_gpu_list(SimulatedRunner("A30", gpus=9).run(["-L"]).stdout)[8].index == 8


def test_gh200_one_slice_gi_offers_compute_instance_profile_7_as_the_driver_does() -> None:
    # fixtures/synthetic/gh200-lcip-ci-profile-7.json: the GH200's 1g.24gb GI (two memory slices, one compute
    # slice) offers one compute instance profile, id 7 (NVML's 1_SLICE_REV1), not 0.
    import json  # noqa: PLC0415

    expected = json.loads((FIXTURES / "synthetic" / "gh200-lcip-ci-profile-7.json").read_text())["expected"][0]
    smi = smimig.Smi(runner=SimulatedRunner("GH200", mig=True))
    (gi,) = smi.create_gi(0, ["1g.24gb"])
    (profile,) = smi.list_ci_profiles(0, gi=[gi.id])
    wanted = {key: expected[key] for key in ("name", "id", "is_default", "free", "total", "sm")}
    assert {key: getattr(profile, key) for key in wanted} == wanted
    (ci,) = smi.create_ci(0, gi.id, ["7"])
    assert ci.profile_id == 7
    # A one-slice GI over one memory slice keeps id 0, and the full-size CI of a larger GI its own id.
    (small,) = smi.create_gi(0, ["1g.12gb"])
    assert [profile.id for profile in smi.list_ci_profiles(0, gi=[small.id])] == [0]
