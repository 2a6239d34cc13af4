"""mig-parted files read as mig-parted reads them: smimig's resolution of every case against mig-parted's own.

``fixtures/mig-parted/expected-*.json`` hold mig-parted's answers (its README says how they were made; the
tests need no Go): for the edge cases of ``edge-cases.yaml`` and for NVIDIA's default config on a node of each
simulated model. A case mig-parted refuses (the file, the config name, entries disagreeing on MIG mode) smimig
refuses with a LayoutError; otherwise both select the same GPUs, agree on MIG mode, on the profile counts that
stand, and, where mig-parted's packing was run, on the GPU instances those counts make and what each holds.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from smimig.layout import (
    GiSpec,
    Layout,
    LayoutError,
    MigPartedDevice,
    load_data,
    resolve_mig_parted,
    short_profile_name,
)
from tests.nvidia_files import MISSING, default_config

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "mig-parted"
SUITES = {
    name: json.loads((FIXTURES / f"expected-{name}.json").read_text()) for name in ("edge-cases", "config-default")
}


@functools.cache
def published(file: str) -> Any:  # the file's data, read once: 81 configs resolve from it
    path = default_config() if file == "config-default.yaml" else FIXTURES / file
    if path is None:
        pytest.skip(MISSING)
    return load_data(path.read_text(encoding="utf-8"))


def resolve(file: str, case_id: str, config: str | None, devices: list[MigPartedDevice]) -> Layout:
    """An edge case from its own text, as a user's file is read; a published file's configs from its data."""
    if file == "edge-cases.yaml":
        return Layout.loads(case_text(file, case_id), config=config, devices=devices)
    return resolve_mig_parted(published(file), config, devices)


@functools.cache
def edge_cases() -> dict[str, str]:
    spec = load_data((FIXTURES / "edge-cases.yaml").read_text(encoding="utf-8"))
    return {case["id"]: case["file"] for case in spec["cases"]}


def case_text(file: str, case_id: str) -> str:
    return edge_cases()[case_id]


FAST_NODES = {"edge", "mixed", "H100-80GBx2"}  # the default suite; the other models' nodes run with -m slow
CASES = [
    pytest.param(
        suite, case, id=f"{name}:{case['id']}", marks=() if case["node"] in FAST_NODES else (pytest.mark.slow,)
    )
    for name, suite in SUITES.items()
    for case in suite["cases"]
]


def instances(gi: GiSpec) -> list[str]:
    """What mig-parted names a GPU instance's compute instances by (a full-size one: the GI's own profile)."""
    return [short_profile_name(gi.profile)] if gi.cis is None else [short_profile_name(ci) for ci in gi.cis]


@pytest.mark.parametrize(("suite", "case"), CASES)
def test_smimig_resolves_as_mig_parted_does(suite: dict[str, Any], case: dict[str, Any]) -> None:
    devices = [
        MigPartedDevice(device["index"], device["device_id"], device.get("subsystem_id"))
        for device in suite["nodes"][case["node"]]
    ]
    expected = case["expected"]
    config = case["config"] or None
    if "error" in expected:
        with pytest.raises(LayoutError):
            resolve(suite["file"], case["id"], config, devices)
        return
    layout = resolve(suite["file"], case["id"], config, devices)
    gpus = {int(index): gpu for index, gpu in expected.get("gpus", {}).items()}
    assert sorted(layout.gpus) == sorted(gpus)
    for index, gpu in gpus.items():
        gis = layout.gpus[index]
        assert (gis is not None) == gpu["mig_enabled"], index
        if gis is None:
            continue
        counts = Counter(name for gi in gis for name in instances(gi))
        assert counts == Counter({key: count for key, count in (gpu.get("mig_devices") or {}).items() if count})
        if gpu.get("flattened"):
            assert [name for gi in gis for name in instances(gi)] == gpu["flattened"]
        if gpu.get("gis"):
            assert [instances(gi) for gi in gis] == gpu["gis"]


def test_the_fixtures_cover_what_they_say() -> None:
    edge = SUITES["edge-cases"]["cases"]
    assert len(edge) >= 50
    assert sum("error" in case["expected"] for case in edge) >= 25
    default = SUITES["config-default"]
    assert len(default["cases"]) == 81 * len(default["nodes"])
    packed = [case for case in default["cases"] for gpu in case["expected"].get("gpus", {}).values() if gpu.get("gis")]
    assert len(packed) >= 50  # configs whose packing mig-parted ran on a mock of the model
