"""Leases: exactly one MIG device for exactly as long as the block, even when others lease at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import smimig
from smimig import LeaseError
from smimig.sim import Fault, SimulatedRunner


@pytest.fixture(autouse=True)
def lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "smimig.lock"
    monkeypatch.setenv("SMIMIG_LOCK_FILE", str(path))
    return path


def node(model: str = "A100-40GB", gpus: int = 1) -> tuple[smimig.Smi, SimulatedRunner]:
    runner = SimulatedRunner(model, gpus=gpus, mig=True)
    return smimig.Smi(runner=runner), runner


def test_lease_yields_a_device_and_cleans_up() -> None:
    smi, _ = node()
    smi.create_gi(0, ["3g.20gb"], ci=True)  # someone else's instance: never touched
    before = smi.list_gis()
    with smi.lease("1g.5gb") as held:
        assert held.profile_name == "MIG 1g.5gb"
        assert held.env["CUDA_VISIBLE_DEVICES"] == held.uuid
        assert [d.uuid for d in smi.devices() if (d.gi, d.ci) == (held.gi, held.ci)] == [held.uuid]
        assert len(smi.list_gis()) == 2
    assert smi.list_gis() == before


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_cleanup_after_an_exception_or_ctrl_c(error: BaseException) -> None:
    smi, _ = node()
    with pytest.raises(type(error)), smi.lease("2g.10gb"):
        raise error
    assert smi.list_gis() == []


def test_ci_profile_and_gpu() -> None:
    smi, _ = node(gpus=2)
    with smi.lease("3g.20gb", gpu=1, ci_profile="1c.3g.20gb") as held:
        assert held.gpu == 1
        assert [ci.short_name for ci in smi.list_cis(1)] == ["1c.3g.20gb"]
    assert smi.list_cis() == []


def test_retries_when_someone_else_took_the_slot() -> None:
    smi, runner = node()
    runner.node.faults.append(Fault("-cgi", "Insufficient Resources", nth=1))  # outside smimig, first
    with smi.lease("1g.5gb") as held:
        assert held.gi >= 1
    assert runner.node.calls["-cgi"] == 2


def test_no_room_says_what_was_free() -> None:
    smi, _ = node()
    smi.create_gi(0, ["4g.20gb"], ci=True)
    with pytest.raises(LeaseError) as caught, smi.lease("4g.20gb"):
        pass
    assert caught.value.free == ("GPU 0: 4g.20gb 0/1 free",)
    assert caught.value.profile == "4g.20gb"
    assert "no room for 4g.20gb on any GPU in MIG mode" in str(caught.value)


def test_release_failure_says_what_is_left() -> None:
    smi, runner = node()
    with pytest.raises(LeaseError) as caught, smi.lease("1g.5gb") as held:
        runner.add_process(held.gpu, held.gi, held.ci, pid=777)  # a process outlives the block
    assert caught.value.left == held
    assert "still there" in str(caught.value)
    runner.remove_process(777)


def test_lease_prefers_a_gpu_already_carved() -> None:
    smi, _ = node(gpus=2)
    smi.create_gi(1, ["3g.20gb"], ci=True)
    with smi.lease("1g.5gb") as held:
        assert held.gpu == 1


def test_bad_arguments_start_nothing() -> None:
    smi, runner = node()
    for bad in ("5,7", "$(x)", ""):
        with pytest.raises(ValueError, match="profile"), smi.lease(bad):
            pass
    assert runner.node.calls == {}


# -- many processes, one node -----------------------------------------------------------------------


def stand_in(tmp_path: Path) -> dict[str, str]:
    script = tmp_path / "nvidia-smi"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m smimig.sim "$@"\n')
    script.chmod(0o755)
    env = {
        **os.environ,
        "SMIMIG_NVIDIA_SMI": str(script),
        "SMIMIG_SIM_STATE": str(tmp_path / "node.json"),
        "SMIMIG_SIM_MODEL": "A100-40GBx1",
    }
    subprocess.run([str(script), "-i", "0", "-mig", "1"], env=env, check=True, capture_output=True)
    return env


# Lease, then hold the device until all seven hold theirs (a barrier of files), so they overlap for sure.
LEASE_AND_HOLD = """
import json, os, sys, time, smimig
barrier, count = sys.argv[1], int(sys.argv[2])
with smimig.lease("1g.5gb") as held:
    print(json.dumps({"uuid": held.uuid, "gi": held.gi}), flush=True)
    open(os.path.join(barrier, str(os.getpid())), "w").close()
    deadline = time.monotonic() + 180
    while len(os.listdir(barrier)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
"""


def test_seven_processes_lease_at_once(tmp_path: Path) -> None:
    env = stand_in(tmp_path)
    barrier = tmp_path / "barrier"
    barrier.mkdir()

    def one(_: int) -> subprocess.CompletedProcess[str]:
        args = [sys.executable, "-c", LEASE_AND_HOLD, str(barrier), "7"]
        return subprocess.run(args, env=env, capture_output=True, text=True, timeout=240, check=False)

    with ThreadPoolExecutor(max_workers=7) as pool:
        results = list(pool.map(one, range(7)))
    assert [result.returncode for result in results] == [0] * 7, [result.stderr[-500:] for result in results]
    leases = [json.loads(result.stdout) for result in results]
    assert len({held["uuid"] for held in leases}) == 7  # all at once, all distinct
    leftover = subprocess.run(
        [env["SMIMIG_NVIDIA_SMI"], "mig", "-lgi"], env=env, capture_output=True, text=True, check=False
    )
    assert leftover.stdout == "No GPU instances found: Not Found\n"


def test_cli_lease_passes_the_exit_code(tmp_path: Path) -> None:
    env = stand_in(tmp_path)
    code = "import os, sys; print(os.environ['CUDA_VISIBLE_DEVICES']); sys.exit(7)"
    result = subprocess.run(
        [sys.executable, "-m", "smimig", "lease", "1g.5gb", "--", sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 7
    assert result.stdout.startswith("MIG-")
    assert "smimig: leased MIG 1g.5gb on GPU 0" in result.stderr
    leftover = subprocess.run(
        [env["SMIMIG_NVIDIA_SMI"], "mig", "-lgi"], env=env, capture_output=True, text=True, check=False
    )
    assert leftover.stdout == "No GPU instances found: Not Found\n"
