"""Layouts: plan, apply, export against the simulator, checked against an independent brute force."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import smimig
from smimig import GiSpec, Layout, LayoutError
from smimig.layout import MigPartedDevice, resolve_mig_parted
from smimig.runner import RunResult
from smimig.sim import SimulatedRunner
from smimig.sim.catalog import MODELS, GiProfile, GpuModel

MUTATING = ("-cgi", "-cci", "-dci", "-dgi", "-mig")


class Counting:
    """A runner that counts the calls it passes on, and which of them change something."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.calls: list[list[str]] = []

    def run(self, args: Sequence[str]) -> RunResult:
        self.calls.append(list(args))
        result: RunResult = self.runner.run(args)
        return result

    @property
    def mutating(self) -> list[list[str]]:
        return [call for call in self.calls if any(option in call for option in MUTATING)]


def smi_for(model: str, gpus: int = 1) -> tuple[smimig.Smi, Counting]:
    counting = Counting(SimulatedRunner(model, gpus=gpus, mig=True))
    return smimig.Smi(runner=counting), counting


# -- the oracle: every arrangement tried, written apart from the planner -----------------------------


def fits(model: GpuModel, profiles: Sequence[GiProfile]) -> bool:
    """Whether some choice of allowed starts places every GI without overlap: a plain depth-first search over
    slice bitmasks, in the given order, with no heuristics (the planner orders and scores; this does not)."""
    counts = Counter(profile.id for profile in profiles)
    if any(counts[profile.id] > profile.instances for profile in profiles):
        return False
    if sum(1 for profile in profiles if profile.ofa > 0) > 1:
        return False
    masks = [[((1 << profile.size) - 1) << start for start in profile.starts] for profile in profiles]

    def place(index: int, used: int) -> bool:
        if index == len(masks):
            return True
        return any(not used & mask and place(index + 1, used | mask) for mask in masks[index])

    return place(0, 0)


def multisets(model: GpuModel) -> list[tuple[GiProfile, ...]]:
    """Every multiset within the instance limits whose memory slices add up to the GPU's at most."""
    found: list[tuple[GiProfile, ...]] = []
    ranges = [range(profile.instances + 1) for profile in model.gi_profiles]
    for counts in itertools.product(*ranges):
        chosen = tuple(p for p, n in zip(model.gi_profiles, counts) for _ in range(n))
        if sum(p.size for p in chosen) <= model.slices:
            found.append(chosen)
    return found


def _geometry(model: GpuModel) -> tuple[tuple[int, int, tuple[int, ...], int, bool, int], ...]:
    return tuple(
        (p.id, p.size, p.starts, p.instances, p.ofa > 0, p.compute_slices)
        for p in sorted(model.gi_profiles, key=lambda p: p.id)
    )


def _by_geometry() -> list[Any]:
    """Every model; one whose profile geometry an earlier model already has (H200, GH200 and B200 share the
    H100's) only in the slow run, since the planner sees nothing but the geometry."""
    seen: set[object] = set()
    params = []
    for key in sorted(MODELS):
        geometry = _geometry(MODELS[key])
        params.append(pytest.param(key, id=key, marks=(pytest.mark.slow,) if geometry in seen else ()))
        seen.add(geometry)
    return params


@pytest.mark.parametrize("model", _by_geometry())
def test_every_multiset_planned_applied_or_rejected(model: str) -> None:
    catalog = MODELS[model]
    valid = invalid = 0
    for chosen in multisets(catalog):
        smi, counting = smi_for(model)
        layout = Layout({0: tuple(GiSpec(p.short_name) for p in chosen)})
        if fits(catalog, chosen):
            valid += 1
            result = smi.apply(layout)
            calls = len(counting.calls)
            mutating = counting.mutating
            assert mutating == (
                [
                    [
                        "mig",
                        "-i",
                        "0",
                        "-cgi",
                        result.plan.steps[0].profiles and ",".join(result.plan.steps[0].profiles),
                        "-C",
                    ]
                ]
                if chosen
                else []
            ), chosen
            assert sorted(gi.short_name for gi in smi.list_gis()) == sorted(p.short_name for p in chosen)
            assert len(smi.list_cis()) == len(chosen)
            assert result.plan.reads == 5
            # plan's 5 reads, the one -cgi, then a re-plan (5 reads) to verify and an export (3)
            assert calls == 5 + len(mutating) + (5 + 3 if chosen else 0)
        else:
            invalid += 1
            with pytest.raises(LayoutError):
                smi.apply(layout)
            assert counting.mutating == [], chosen
    assert valid > 10
    assert invalid > 0


@pytest.mark.parametrize(
    ("model", "profiles"),
    [
        ("A100-40GB", ["1g.5gb", "2g.10gb", "4g.20gb"]),
        ("A30", ["1g.6gb", "1g.6gb", "2g.12gb"]),
        ("H100-80GB", ["1g.10gb", "3g.40gb", "1g.20gb"]),
        ("H100-80GB", ["2g.20gb", "1g.20gb", "4g.40gb"]),
    ],
)
def test_packing_whatever_the_order(model: str, profiles: list[str]) -> None:
    for order in itertools.permutations(profiles):
        smi, _ = smi_for(model)
        smi.apply(Layout({0: tuple(GiSpec(name) for name in order)}))
        assert sorted(gi.short_name for gi in smi.list_gis()) == sorted(profiles)


def test_second_apply_changes_nothing_and_export_round_trips() -> None:
    smi, counting = smi_for("A100-40GB", gpus=2)
    layout = Layout.from_dict(
        {
            0: ["3g.20gb", "2g.10gb", "1g.5gb", "1g.5gb"],
            1: [{"profile": "4g.20gb", "cis": ["2c.4g.20gb", "1c.4g.20gb", "1c.4g.20gb"]}],
        }
    )
    first = smi.apply(layout)
    assert first.changed
    before = len(counting.mutating)
    second = smi.apply(layout)
    assert (second.changed, len(counting.mutating)) == (False, before)
    exported = smi.export()
    assert smi.plan(exported).is_noop
    assert smi.apply(Layout.loads(exported.to_yaml())).ran == ()
    assert smi.apply(Layout.loads(exported.to_json())).ran == ()
    assert len(counting.mutating) == before
    assert [len(gi.cis or ()) for gi in exported.gpus[1] or ()] == [3]


def test_apply_a_then_b_destroys_only_what_it_must() -> None:
    smi, counting = smi_for("A100-40GB")
    smi.apply(Layout.from_dict({0: ["4g.20gb", "2g.10gb", "1g.5gb"]}))
    kept = {gi.short_name: gi.id for gi in smi.list_gis()}
    counting.calls.clear()
    result = smi.apply(Layout.from_dict({0: ["4g.20gb", "1g.5gb", "1g.5gb", "1g.5gb"]}))
    assert [str(step) for step in result.ran] == [
        "nvidia-smi mig -i 0 -gi 2 -dci",
        "nvidia-smi mig -i 0 -gi 2 -dgi",
        "nvidia-smi mig -i 0 -cgi 1g.5gb:4,1g.5gb:5 -C",
    ]
    assert {gi.short_name: gi.id for gi in smi.list_gis() if gi.short_name == "4g.20gb"} == {"4g.20gb": kept["4g.20gb"]}


def test_impossible_layout_says_why_and_suggests() -> None:
    smi, counting = smi_for("A100-40GB")
    with pytest.raises(LayoutError) as caught:
        smi.plan(Layout.from_dict({0: ["4g.20gb", "3g.20gb", "1g.5gb"]}))
    assert caught.value.reason == "GPU 0: the layout needs 9 memory slices; the GPU has 8"
    assert "[4g.20gb, 3g.20gb]" in caught.value.suggestions
    with pytest.raises(LayoutError) as unknown:
        smi.plan(Layout.from_dict({0: ["3g.40gb"]}))
    assert "no GPU instance profile '3g.40gb'" in str(unknown.value)
    with pytest.raises(LayoutError, match="cannot start at slice 1; allowed starts: 0, 2, 4"):
        smi.plan(Layout.from_dict({0: ["2g.10gb:1"]}))
    smi.apply(Layout.from_dict({0: ["3g.20gb:0"]}))
    with pytest.raises(LayoutError) as taken:
        smi.plan(Layout.from_dict({0: ["3g.20gb:0", "4g.20gb"]}))
    assert "4g.20gb needs slices 0-3 (one of them), but slices 0-3 are taken" in taken.value.reason
    with pytest.raises(LayoutError, match="optical-flow"):
        smi.plan(Layout.from_dict({0: ["1g.5gb+me", "7g.40gb"]}))
    assert counting.mutating == [["mig", "-i", "0", "-cgi", "3g.20gb:0", "-C"]]


def test_mig_off_and_on() -> None:
    runner = Counting(SimulatedRunner("A30", gpus=2))
    smi = smimig.Smi(runner=runner)
    result = smi.apply(Layout.from_dict({0: ["2g.12gb", "2g.12gb"], 1: []}))
    assert [str(step) for step in result.ran][:2] == ["nvidia-smi -i 0 -mig 1", "nvidia-smi -i 1 -mig 1"]
    assert [mode.current for mode in smi.mig_mode()] == [True, True]
    off = smi.apply(Layout.from_dict({0: None}))
    assert [str(step) for step in off.ran] == [
        "nvidia-smi mig -i 0 -gi 1,2 -dci",
        "nvidia-smi mig -i 0 -gi 1,2 -dgi",
        "nvidia-smi -i 0 -mig 0",
    ]


def test_dry_run_changes_nothing() -> None:
    smi, counting = smi_for("H100-80GB")
    result = smi.apply(Layout.from_dict({0: ["7g.80gb"]}), dry_run=True)
    assert result.dry_run
    assert counting.mutating == []
    assert "nvidia-smi mig -i 0 -cgi 7g.80gb:0 -C" in str(result)


# -- files, mig-parted ------------------------------------------------------------------------------

MIG_PARTED = """\
version: v1
mig-configs:
  all-disabled:
    - devices: all
      mig-enabled: false

  all-1g.10gb:
    # H100-80GB, H800-80GB, A100-80GB, A800-80GB
    - device-filter: ["0x233010DE", "0x233110DE", "0x232210DE", "0x20B210DE", "0x20B510DE"]
      devices: all
      mig-enabled: true
      mig-devices:
        "1g.10gb": 7

    # A100-40GB, A800-40GB
    - device-filter: ["0x20B010DE", "0x20B110DE", "0x20F110DE", "0x20F610DE"]
      devices: all
      mig-enabled: true
      mig-devices:
        "1g.10gb": 4

  custom-config:
    - devices: [0]
      mig-enabled: true
      mig-devices:
        "1c.3g.40gb": 5
        "1g.10gb": 0
    - devices: [1]
      mig-enabled: false
"""


def test_mig_parted_config_as_nvidia_ships_it(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(MIG_PARTED)
    smi, _ = smi_for("H100-80GB", gpus=2)
    layout = smi.load_layout(path, config="all-1g.10gb")
    assert layout == Layout({0: (GiSpec("1g.10gb"),) * 7, 1: (GiSpec("1g.10gb"),) * 7})
    smi.apply(layout)
    assert len(smi.devices()) == 14
    custom = smi.load_layout(path, config="custom-config")
    # five 1c CIs fill one 3g.40gb GI (three compute slices), then start a second, as mig-parted does
    assert custom.gpus[0] == (
        GiSpec("3g.40gb", None, ("1c.3g.40gb",) * 3),
        GiSpec("3g.40gb", None, ("1c.3g.40gb",) * 2),
    )
    assert custom.gpus[1] is None
    smi.apply(custom)
    assert sorted(ci.short_name for ci in smi.list_cis(0)) == ["1c.3g.40gb"] * 5
    with pytest.raises(LayoutError, match=r"this file has: all-1g\.10gb, all-disabled, custom-config"):
        smi.load_layout(path, config="nope")


def test_mig_parted_filter_selects_by_device_id(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(MIG_PARTED)
    smi, _ = smi_for("A30")  # 0x20B710DE: no entry of all-1g.10gb selects it
    assert smi.load_layout(path, config="all-1g.10gb") == Layout({})


def test_export_as_mig_parted_round_trips() -> None:
    smi, _ = smi_for("A100-40GB", gpus=2)
    smi.apply(Layout.from_dict({0: ["3g.20gb", "2g.10gb", "1g.5gb"], 1: None}))
    config = smi.export().to_mig_parted("mine")
    assert config == {
        "version": "v1",
        "mig-configs": {
            "mine": [
                {"devices": [0], "mig-enabled": True, "mig-devices": {"3g.20gb": 1, "2g.10gb": 1, "1g.5gb": 1}},
                {"devices": [1], "mig-enabled": False},
            ]
        },
    }
    back = resolve_mig_parted(config, "mine", [MigPartedDevice(0, "0x20B010DE"), MigPartedDevice(1, "0x20B010DE")])
    assert smi.plan(back).is_noop


@pytest.mark.parametrize(
    "data",
    [
        {0: "3g.20gb"},
        {0: [{"profile": "3g.20gb", "cis": "1c.3g.20gb"}]},
        {"x": []},
        {0: ["5,7"]},
        {0: ["3g.20gb:x"]},
        {0: [{"profile": "3g.20gb", "extra": 1}]},
        {"version": "v1", "mig-configs": {}},
        [],
    ],
)
def test_bad_layout_data(data: Any) -> None:
    with pytest.raises(LayoutError):
        Layout.from_dict(data)


def mig_parted_errors(spec: Any) -> list[str]:
    """The rules of mig-parted's api/spec/v1 (Spec and MigConfigSpec unmarshalling), written out."""
    errors = []
    if not isinstance(spec, dict) or spec.get("version") != "v1":
        return ["version must be 'v1'"]
    if set(spec) - {"version", "mig-configs"}:
        errors.append(f"unexpected fields {set(spec) - {'version', 'mig-configs'}}")
    configs = spec.get("mig-configs")
    if not isinstance(configs, dict) or not configs:
        return [*errors, "at least one entry in 'mig-configs' is required"]
    profile = re.compile(r"([0-9]+c\.)?[0-9]+g\.[0-9]+gb(\+[a-z]+(\.[a-z]+)?|-[a-z]+)?")
    for name, entries in configs.items():
        if not isinstance(entries, list) or not entries:
            errors.append(f"{name}: at least one entry is required")
            continue
        for entry in entries:
            if not {"devices", "mig-enabled"} <= set(entry):
                errors.append(f"{name}: missing required field")
            if set(entry) - {"device-filter", "devices", "mig-enabled", "mig-devices"}:
                errors.append(f"{name}: unexpected field")
            devices = entry.get("devices")
            if devices != "all" and not (isinstance(devices, list) and all(isinstance(d, int) for d in devices)):
                errors.append(f"{name}: devices must be 'all' or a list of indices")
            if not isinstance(entry.get("mig-enabled"), bool):
                errors.append(f"{name}: mig-enabled must be a bool")
            for key, count in (entry.get("mig-devices") or {}).items():
                if not profile.fullmatch(key) or not isinstance(count, int) or count < 0:
                    errors.append(f"{name}: bad mig-devices entry {key}: {count}")
    return errors


def test_mig_parted_export_validates_and_round_trips(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    smi, _ = smi_for("H100-80GB", gpus=3)
    smi.apply(
        Layout.from_dict(
            {
                0: ["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"],
                1: [{"profile": "3g.40gb", "cis": ["1c.3g.40gb"] * 3}],
                2: None,
            }
        )
    )
    text = yaml.safe_dump(smi.export().to_mig_parted("lab"))
    spec = yaml.safe_load(text)
    assert mig_parted_errors(spec) == []
    path = tmp_path / "config.yaml"
    path.write_text(text)
    assert smi.plan(smi.load_layout(path, config="lab")).is_noop
    assert mig_parted_errors(yaml.safe_load(MIG_PARTED)) == []  # the checker accepts NVIDIA's own shape
