"""The stand-in binary: nvidia-smi's arguments in, its text out, one state file shared by processes.

Each test runs the stand-in's main() in process; the slow run repeats them through real processes
(``python -m smimig.sim``), as another tool would start it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import pytest

import smimig
from smimig.runner import ENV_VAR, RunResult, SubprocessRunner
from smimig.sim import StateFileRunner
from smimig.sim.__main__ import main

STAND_IN = [sys.executable, "-m", "smimig.sim"]

Sim = Callable[..., "subprocess.CompletedProcess[str]"]


def in_process(argv: list[str]) -> subprocess.CompletedProcess[str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def as_a_process(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STAND_IN, *argv], capture_output=True, text=True, check=False, timeout=60)


@pytest.fixture(params=[in_process, pytest.param(as_a_process, marks=pytest.mark.slow)], ids=["in-process", "process"])
def sim(request: pytest.FixtureRequest) -> Sim:
    """``sim(state, *args, model="A30x4")``: one call of the stand-in over the state file ``state``."""
    start: Callable[[list[str]], subprocess.CompletedProcess[str]] = request.param

    def call(state: Path, *args: str, model: str = "A30x4") -> subprocess.CompletedProcess[str]:
        return start(["--state", str(state), "--model", model, *args])

    return call


def test_state_persists_between_processes(sim: Sim, tmp_path: Path) -> None:
    state = tmp_path / "node.json"
    assert sim(state, "-i", "0", "-mig", "1").stdout == "Enabled MIG Mode for GPU 00000000:17:00.0\nAll done.\n"
    assert sim(state, "mig", "-cgi", "5,5", "-C").returncode == 0
    listing = sim(state, "mig", "-lgi")
    assert [gi.id for gi in smimig.parsers.parse_gis(listing.stdout)] == [1, 2]
    assert json.loads(state.read_text())["model"] == "A30"
    assert sim(state, "--reset", "mig", "-lgi").stdout == "No MIG-enabled devices found.\n"


def test_errors_and_exit_codes(sim: Sim, tmp_path: Path) -> None:
    state = tmp_path / "node.json"
    bogus = sim(state, "mig", "-bogus")
    assert (bogus.returncode, bogus.stdout) == (2, 'Option "-bogus" is not recognized.\n')
    assert sim(state, "mig", "-i", "9", "-lgip").returncode == 6
    bad_model = sim(state, "-L", model="V100")
    assert bad_model.returncode == 2
    assert "unknown GPU model" in bad_model.stderr


def test_models_by_alias_in_any_case(sim: Sim, tmp_path: Path) -> None:
    listing = sim(tmp_path / "node.json", "-L", model="h200x2")
    assert listing.stdout.splitlines() == [
        "GPU 0: NVIDIA H200 (UUID: GPU-84135ed2-9dce-b2e5-bcd1-eebe17e77a17)",
        f"GPU 1: NVIDIA H200 (UUID: {smimig.parsers.parse_gpu_list(listing.stdout)[1].uuid})",
    ]
    assert json.loads((tmp_path / "node.json").read_text())["model"] == "H200-141GB"


@pytest.mark.slow
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
    runner = StateFileRunner(state, "A100-40GB", gpus=1)  # what each stand-in process runs, here from threads
    runner.run(["-mig", "1"])
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: runner.run(["mig", "-i", "0", "-cgi", "19"]), range(9)))
    assert_seven_created(results, runner.run(["mig", "-lgi"]).stdout, tmp_path)


@pytest.mark.slow
def test_concurrent_processes_never_corrupt_the_state(tmp_path: Path) -> None:
    def stand_in(*args: str) -> subprocess.CompletedProcess[str]:
        return as_a_process(["--state", str(state), "--model", "A100-40GBx1", *args])

    state = tmp_path / "node.json"
    stand_in("-mig", "1")
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: stand_in("mig", "-i", "0", "-cgi", "19"), range(9)))
    assert_seven_created(results, stand_in("mig", "-lgi").stdout, tmp_path)


def assert_seven_created(
    results: list[subprocess.CompletedProcess[str]] | list[RunResult], listing: str, tmp_path: Path
) -> None:
    created = [result for result in results if result.returncode == 0]
    refused = [result for result in results if result.returncode != 0]
    assert len(created) == 7  # seven 1g.5gb slots, no more
    assert all("Insufficient Resources" in result.stdout for result in refused)
    gis = smimig.parsers.parse_gis(listing)
    assert sorted(gi.placement.start for gi in gis) == list(range(7))
    assert sorted(gi.id for gi in gis) == list(range(1, 8))
    assert not [name for name in os.listdir(tmp_path) if name.startswith("node.json.") and name != "node.json.lock"]
