"""The stand-in binary: nvidia-smi's arguments in, its text out, one state file shared by processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import smimig
from smimig.runner import ENV_VAR, SubprocessRunner

STAND_IN = [sys.executable, "-m", "smimig.sim"]


def sim(state: Path, *args: str, model: str = "A30x4") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STAND_IN, "--state", str(state), "--model", model, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_state_persists_between_processes(tmp_path: Path) -> None:
    state = tmp_path / "node.json"
    assert sim(state, "-i", "0", "-mig", "1").stdout == "Enabled MIG Mode for GPU 00000000:17:00.0\nAll done.\n"
    assert sim(state, "mig", "-cgi", "5,5", "-C").returncode == 0
    listing = sim(state, "mig", "-lgi")
    assert [gi.id for gi in smimig.parsers.parse_gis(listing.stdout)] == [1, 2]
    assert json.loads(state.read_text())["model"] == "A30"
    assert sim(state, "--reset", "mig", "-lgi").stdout == "No MIG-enabled devices found.\n"


def test_errors_and_exit_codes(tmp_path: Path) -> None:
    state = tmp_path / "node.json"
    bogus = sim(state, "mig", "-bogus")
    assert (bogus.returncode, bogus.stdout) == (2, 'Option "-bogus" is not recognized.\n')
    assert sim(state, "mig", "-i", "9", "-lgip").returncode == 6
    bad_model = sim(state, "-L", model="V100")
    assert bad_model.returncode == 2
    assert "unknown GPU model" in bad_model.stderr


def test_models_by_alias_in_any_case(tmp_path: Path) -> None:
    listing = sim(tmp_path / "node.json", "-L", model="h200x2")
    assert listing.stdout.splitlines() == [
        "GPU 0: NVIDIA H200 (UUID: GPU-84135ed2-9dce-b2e5-bcd1-eebe17e77a17)",
        f"GPU 1: NVIDIA H200 (UUID: {smimig.parsers.parse_gpu_list(listing.stdout)[1].uuid})",
    ]
    assert json.loads((tmp_path / "node.json").read_text())["model"] == "H200-141GB"


def test_the_api_over_the_stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "nvidia-smi"
    script.write_text(f'#!/bin/sh\nexec {sys.executable} -m smimig.sim "$@"\n')
    script.chmod(0o755)
    monkeypatch.setenv(ENV_VAR, str(script))
    monkeypatch.setenv("SMIMIG_SIM_STATE", str(tmp_path / "node.json"))
    monkeypatch.setenv("SMIMIG_SIM_MODEL", "H100-80GBx2")
    smi = smimig.Smi()
    assert [gpu.name for gpu in smi.list_gpus()] == ["NVIDIA H100 80GB HBM3"] * 2
    smi.enable_mig(1)
    created = smi.create_gi(1, ["1g.10gb", "3g.40gb"], ci=True)
    assert [(gi.profile_name, len(gi.compute_instances)) for gi in created] == [
        ("MIG 1g.10gb", 1),
        ("MIG 3g.40gb", 1),
    ]
    assert len(smimig.Smi(runner=SubprocessRunner(str(script))).list_mig_devices(1)) == 2


def test_concurrent_creates_never_corrupt_the_state(tmp_path: Path) -> None:
    state = tmp_path / "node.json"
    sim(state, "-mig", "1", model="A100-40GBx1")
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: sim(state, "mig", "-i", "0", "-cgi", "19", model="A100-40GBx1"), range(9)))
    created = [result for result in results if result.returncode == 0]
    refused = [result for result in results if result.returncode != 0]
    assert len(created) == 7  # seven 1g.5gb slots, no more
    assert all("Insufficient Resources" in result.stdout for result in refused)
    gis = smimig.parsers.parse_gis(sim(state, "mig", "-lgi", model="A100-40GBx1").stdout)
    assert sorted(gi.placement.start for gi in gis) == list(range(7))
    assert sorted(gi.id for gi in gis) == list(range(1, 8))
    assert not [name for name in os.listdir(tmp_path) if name.startswith("node.json.") and name != "node.json.lock"]
