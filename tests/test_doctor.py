"""smimig doctor: healthy, pending because busy, and output it cannot parse (named, saved, exit 1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

import smimig
from smimig import commands
from smimig.runner import RunResult
from smimig.sim import SimulatedRunner
from smimig.testing import FakeRunner


def test_healthy_node() -> None:
    report = smimig.Smi(runner=SimulatedRunner("H100-80GB", gpus=2)).doctor()
    assert report.healthy
    assert report.driver == "580.159.04"
    assert [(gpu.index, gpu.mig_capable, gpu.mig_current) for gpu in report.gpus] == [
        (0, True, False),
        (1, True, False),
    ]
    assert all(check.ok for check in report.listings)
    assert len(report.listings) == 10
    assert str(report).splitlines()[-1] == "ok  self-check: all 10 listings parse"


class Counting:
    """The simulator, counting each argv; ``fail`` answers one command line with exit code 255."""

    def __init__(self, fail: Sequence[str] | None = None) -> None:
        self.sim = SimulatedRunner("A30", gpus=1, mig=True)
        self.calls: list[list[str]] = []
        self.fail = list(fail) if fail is not None else None

    def run(self, args: Sequence[str]) -> RunResult:
        self.calls.append(list(args))
        if list(args) == self.fail:
            return RunResult(("nvidia-smi", *args), 255, "Unknown Error\n", "")
        return self.sim.run(args)


def test_self_check_runs_the_registrys_listings_through_smi() -> None:
    runner = Counting()
    report = smimig.Smi(runner=runner, max_workers=1).doctor()
    listed = [command for command in commands.COMMANDS if command.self_check]
    assert [(check.name, check.command) for check in report.listings] == [
        (command.name, " ".join(["nvidia-smi", *command.argv()])) for command in listed
    ]
    for command in listed:
        assert command.argv() in runner.calls
    # plain nvidia-smi serves two tables; the self-check runs it once (the processes read before it is
    # the other run; the driver comes from --version)
    assert runner.calls.count([]) == 2
    assert ["--version"] in runner.calls


def test_a_listing_that_fails_is_reported_with_its_exit_code() -> None:
    report = smimig.Smi(runner=Counting(fail=["mig", "-lgipp"])).doctor()
    (failed,) = [check for check in report.listings if not check.ok]
    assert (failed.name, failed.problem, failed.saved_to) == (
        "GPU instance placements",
        "exit code 255: Unknown Error",
        None,
    )
    assert "!!  listing 'GPU instance placements' (nvidia-smi mig -lgipp) not understood: exit code 255" in str(report)


def test_pending_because_a_process_uses_the_gpu() -> None:
    runner = SimulatedRunner("A30", gpus=2)
    runner.add_process(1, pid=31337, name="python serve.py")
    smi = smimig.Smi(runner=runner)
    (change,) = smi.enable_mig(1)
    assert change.pending
    report = smi.doctor()
    assert not report.healthy
    gpu = report.gpus[1]
    assert (gpu.mig_current, gpu.mig_pending) == (False, True)
    assert [process.pid for process in gpu.processes] == [31337]
    assert "GPU 1 NVIDIA A30: MIG off, pending on: processes use the GPU: PID 31337 (python serve.py)" in str(report)
    runner.remove_process(31337)
    runner.reset_gpu(1)
    assert smi.doctor().healthy


def test_a_listing_it_cannot_parse_is_named_and_saved(tmp_path: Path) -> None:
    new_layout = "+------+\n| GPU instances (new layout):  |\n+------+\n"
    runner = FakeRunner({("mig", "-lgi"): new_layout}, handler=SimulatedRunner("A30", gpus=1).run)
    report = smimig.Smi(runner=runner).doctor(save_dir=tmp_path)
    assert not report.healthy
    (problem,) = (check for check in report.listings if not check.ok)
    assert (problem.name, problem.command) == ("GPU instances", "nvidia-smi mig -lgi")
    assert problem.saved_to == str(tmp_path / "gpu-instances.txt")
    assert (tmp_path / "gpu-instances.txt").read_text() == f"$ nvidia-smi mig -lgi\n# exit code 0\n{new_layout}"
    assert sum(1 for check in report.listings if check.ok) == len(report.listings) - 1
    line = next(line for line in str(report).splitlines() if line.startswith("!!"))
    assert line.startswith("!!  listing 'GPU instances' (nvidia-smi mig -lgi) not understood")


@pytest.mark.slow
def test_output_it_cannot_parse_is_named_and_saved(tmp_path: Path) -> None:
    state = tmp_path / "node.json"
    fake = tmp_path / "nvidia-smi"
    fake.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = mig ] && [ "$2" = -lgi ]; then\n'
        "  printf '+------+\\n| GPU instances (new layout):  |\\n+------+\\n'; exit 0\n"
        "fi\n"
        f'exec "{sys.executable}" -m smimig.sim --state "{state}" --model A30x1 "$@"\n'
    )
    fake.chmod(0o755)
    env = {**os.environ, "SMIMIG_NVIDIA_SMI": str(fake)}
    saved = tmp_path / "saved"
    result = subprocess.run(
        [sys.executable, "-m", "smimig", "doctor", "--save-dir", str(saved)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    problem = next(line for line in result.stdout.splitlines() if line.startswith("!!"))
    assert problem.startswith("!!  listing 'GPU instances' (nvidia-smi mig -lgi) not understood")
    assert str(saved / "gpu-instances.txt") in problem
    assert (saved / "gpu-instances.txt").read_text().startswith("$ nvidia-smi mig -lgi\n# exit code 0\n+------+")
    as_json = subprocess.run(
        [sys.executable, "-m", "smimig", "doctor", "--json", "--save-dir", str(saved)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    listings = {check["name"]: check for check in json.loads(as_json.stdout)["listings"]}
    assert listings["GPU instances"]["ok"] is False
    assert listings["GPU instance profiles"]["ok"] is True
    assert sum(1 for check in listings.values() if not check["ok"]) == 1


def test_no_nvidia_smi(tmp_path: Path) -> None:
    env = {**os.environ, "SMIMIG_NVIDIA_SMI": str(tmp_path / "missing")}
    result = subprocess.run(
        [sys.executable, "-m", "smimig", "doctor"], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert result.stdout.startswith("!!  nvidia-smi: nvidia-smi not found")
