"""The smimig command, run as a user runs it, against the simulator: cli.main() in process, and in the slow
run the same tests through the console script in a subprocess."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from smimig import cli
from smimig.runner import ENV_VAR
from tests.command_line import SMIMIG, Invoke, Smimig, caller, in_process
from tests.fixtures import recording, text_of


@pytest.fixture
def run(invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Smimig:
    """``run("status", ...)`` runs ``smimig --simulate A30x4 …`` with its own cache directory, in process and
    (slow) through the console script; argparse's exits (usage errors, --help) give their code."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(ENV_VAR, raising=False)
    return caller(invoke, "A30x4", catch_exit=True)


def test_console_script_is_installed() -> None:
    assert SMIMIG, "pip install . puts 'smimig' on PATH"


def test_status_is_the_default(run: Smimig) -> None:
    result = run()
    assert result.code == 0
    assert result.out.splitlines() == [
        "GPU 0  NVIDIA A30  GPU-d8430827-89da-89df-1d70-bde0c9883859  MIG off",
        "GPU 1  NVIDIA A30  GPU-d1ee693e-571b-7664-f22b-1312585630d0  MIG off",
        "GPU 2  NVIDIA A30  GPU-fc7c8f73-47c4-7b21-c9da-858462fa0433  MIG off",
        "GPU 3  NVIDIA A30  GPU-bef3638b-2c97-ea4b-83d9-b1a6b7d2fc29  MIG off",
    ]


def test_seed_walkthrough_through_the_cli(run: Smimig) -> None:
    assert run("mode", "on", "-i", "0").code == 0
    created = run("create-gi", "5", "5", "-i", "0", "-C", "--json")
    assert created.code == 0
    assert [(gi["id"], len(gi["compute_instances"])) for gi in json.loads(created.out)] == [(1, 1), (2, 1)]
    assert run("destroy-ci", "-i", "0").code == 0
    assert run("create-ci", "--gi", "1", "0", "0", "-i", "0").code == 0
    assert run("create-ci", "--gi", "2", "1c.2g.12gb", "1c.2g.12gb", "-i", "0").code == 0
    status = run("status")
    assert status.out.splitlines()[:10] == [
        "GPU 0  NVIDIA A30  GPU-d8430827-89da-89df-1d70-bde0c9883859  MIG on",
        "  |         2g.12gb GI 1          |         2g.12gb GI 2          |",
        "  |     CI 0      :     CI 1      |     CI 0      :     CI 1      |",
        "  GI 1  MIG 2g.12gb      profile 5   placement 0:2",
        "    CI 0  MIG 1c.2g.12gb   placement 0:1  MIG-89b757f7-3c4c-5b1c-9476-a11b14aa9308",
        "    CI 1  MIG 1c.2g.12gb   placement 1:1  MIG-bdf043cc-8668-599c-95b0-5b640d416440",
        "  GI 2  MIG 2g.12gb      profile 5   placement 2:2",
        "    CI 0  MIG 1c.2g.12gb   placement 0:1  MIG-6df26cf8-a984-58d3-978e-acb0c808d513",
        "    CI 1  MIG 1c.2g.12gb   placement 1:1  MIG-6f79e1f8-f1ed-5121-976a-4ff3f0df8634",
        "  free: 1g.6gb 0/4, 1g.6gb+me 0/1, 2g.12gb 0/2, 2g.12gb+me 0/1, 4g.24gb 0/1",
    ]
    devices = json.loads(run("devices", "--json").out)
    assert [device["uuid"] for device in devices][:1] == ["MIG-89b757f7-3c4c-5b1c-9476-a11b14aa9308"]
    assert set(devices[0]) == {"gpu", "gi", "ci", "index", "uuid", "name"}
    assert run("destroy-ci").code == 0
    destroyed = run("destroy-gi", "--json")
    assert json.loads(destroyed.out) == {
        "compute_instances": [],  # destroy-ci ran first here; destroy-gi would have taken them itself
        "gpu_instances": [{"gpu": 0, "id": 1}, {"gpu": 0, "id": 2}],
    }
    assert run("--reset-simulation", "gis").out == "(none)\n"


def test_listings_print_tables(run: Smimig) -> None:
    run("mode", "on", "-i", "0")
    run("create-gi", "2g.12gb", "-i", "0")
    table = run("gis").out.splitlines()
    assert table[0].split() == ["gpu", "name", "profile_id", "id", "placement"]
    assert table[2].split() == ["0", "MIG", "2g.12gb", "5", "1", "0:2"]
    profiles = json.loads(run("profiles", "--json", "-i", "0").out)
    assert [(p["name"], p["free"], p["total"]) for p in profiles][2] == ("MIG 2g.12gb", 1, 2)
    ci_profiles = json.loads(run("profiles", "--gi", "1", "--json").out)
    assert [(p["name"], p["is_default"]) for p in ci_profiles] == [
        ("MIG 1c.2g.12gb", False),
        ("MIG 2g.12gb", True),
    ]
    placements = json.loads(run("placements", "--json").out)
    assert placements[0] == {
        "gpu": 0,
        "profile_id": 14,
        "placements": [{"start": s, "size": 1} for s in range(4)],
    }
    assert json.loads(run("gpus", "--json", "-i", "1").out)[0]["index"] == 1


def test_partial_failure_exit_code_and_message(run: Smimig) -> None:
    run("mode", "on", "-i", "0")
    result = run("create-gi", "2g.12gb", "2g.12gb", "1g.6gb", "-i", "0")
    assert result.code == cli.EXIT_PARTIAL
    assert result.err.splitlines() == [
        "smimig: nvidia-smi mig -i 0 -cgi 2g.12gb,2g.12gb,1g.6gb failed part-way: 2 change(s) were made before it.",
        "  done: CreatedGpuInstance(gpu=0, id=1, profile_name='MIG 2g.12gb', profile_id=5, compute_instances=())",
        "  done: CreatedGpuInstance(gpu=0, id=2, profile_name='MIG 2g.12gb', profile_id=5, compute_instances=())",
        "  nvidia-smi: Unable to create a GPU instance on GPU  0 using profile 1g.6gb: Insufficient Resources",
        "  nvidia-smi: Failed to create GPU instances: Insufficient Resources",
    ]
    refused = run("create-gi", "4g.24gb", "-i", "0")  # no room left: nvidia-smi refuses, nothing changes
    assert refused.code == cli.EXIT_NVIDIA_SMI
    assert "nothing was changed" in refused.err
    nothing = run("destroy-gi", "-i", "0", "--gi", "7")  # like rm -f: nothing to destroy is no failure
    assert (nothing.code, nothing.out) == (0, "nothing to destroy: no GPU instance matches\n")


def test_nvidia_smi_failure_exit_code(run: Smimig) -> None:
    result = run("gis", "-i", "9")
    assert result.code == cli.EXIT_NVIDIA_SMI
    assert (
        result.err == "smimig: nvidia-smi mig -i 9 -lgi failed with exit code 6.\n  nvidia-smi: No devices were found\n"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["create-gi", "5,7", "-i", "0"],
        ["create-gi", "$(reboot)", "-i", "0"],
        ["create-gi", "5"],
        ["gis", "-i", "x"],
        ["mode", "maybe", "-i", "0"],
        ["create-ci", "-i", "0"],
        ["frobnicate"],
    ],
)
def test_bad_arguments_are_usage_errors(run: Smimig, args: list[str]) -> None:
    result = run(*args)
    assert result.code == cli.EXIT_USAGE
    assert result.out == ""
    assert result.err.startswith(("usage:", "smimig:"))


def test_bad_simulation_spec(run: Smimig) -> None:
    result = run("status", simulate="V100x2")
    assert (result.code, result.err.strip()) == (
        cli.EXIT_USAGE,
        "smimig: unknown GPU model 'V100'; known: A100-40GB, A100-80GB, A30, B200, GH200-480GB, H100-80GB, "
        "H200-141GB, RTX-PRO-6000, RTX-PRO-6000-GRID4 (smimig --simulate list describes the models)",
    )


def test_help_reads_well(run: Smimig) -> None:
    result = run("--help", simulate=None)
    assert result.code == 0
    for command in (
        "status",
        "gpus",
        "profiles",
        "placements",
        "gis",
        "cis",
        "devices",
        "mode",
        "create-gi",
        "create-ci",
        "destroy-ci",
        "destroy-gi",
    ):
        assert f"    {command} " in result.out
    assert "exit codes:" in result.out


@pytest.mark.parametrize("columns", [None, "60", "200", "0", "-5", "wide"])
def test_help_is_as_wide_as_argparse_would_make_it(monkeypatch: pytest.MonkeyPatch, columns: str | None) -> None:
    # smimig tells argparse the terminal's width itself (argparse would import shutil to ask): the same width.
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert cli._columns() == shutil.get_terminal_size().columns
    expected = argparse.ArgumentParser(prog="smimig", description="word " * 80).format_help()
    ours = argparse.ArgumentParser(prog="smimig", description="word " * 80, formatter_class=cli._HelpFormatter)
    assert ours.format_help() == expected


@pytest.mark.parametrize("closed", ["1", "2"])
def test_a_closed_output_is_no_crash(tmp_path: Path, closed: str) -> None:
    # 'smimig gis >&-' (a cron line, say): the output goes nowhere, as to a reader that left; no crash report.
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "TMPDIR": str(tmp_path)}
    result = subprocess.run(
        ["sh", "-c", f'exec "$0" -m smimig --simulate A30x4 gis {closed}>&-', sys.executable],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert not list(tmp_path.glob("smimig-crash-*"))


def test_python_dash_m(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "-m", "smimig", "--simulate", "H100-80GB", "profiles", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert [p["name"] for p in json.loads(result.stdout)][-1] == "MIG 7g.80gb"


# -- the real-binary paths, in process, with pytest-subprocess --------------------------------------


def test_real_binary_paths(fp: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "/opt/fake/nvidia-smi")
    fp.register(["/opt/fake/nvidia-smi", "mig", "-i", "0", "-lgi"], stdout=text_of("a30-driver545/lgi.txt"))
    ran = in_process(["gis", "-i", "0", "--json"])
    assert ran.code == cli.EXIT_OK
    assert [gi["placement"] for gi in json.loads(ran.out)] == [
        {"start": 0, "size": 2},
        {"start": 2, "size": 2},
    ]


def test_sudo_and_parse_failure(fp: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "/opt/fake/nvidia-smi")
    fp.register(["sudo", "-n", "/opt/fake/nvidia-smi", "mig", "-lgi"], stdout="something new\n")
    ran = in_process(["--sudo", "gis"])
    assert ran.code == cli.EXIT_PARSE
    assert "does not understand" in ran.err


def test_permission_denied_suggests_sudo(fp: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "/opt/fake/nvidia-smi")
    stdout = text_of("synthetic/mig1-permissions.txt")
    fp.register(["/opt/fake/nvidia-smi", "-i", "0", "-mig", "1"], stdout=stdout, returncode=4)
    ran = in_process(["mode", "on", "-i", "0"])
    assert ran.code == cli.EXIT_NVIDIA_SMI
    assert "--sudo" in ran.err


def test_missing_binary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nothing-here"))
    ran = in_process(["status"])
    assert ran.code == cli.EXIT_NVIDIA_SMI
    assert "SMIMIG_NVIDIA_SMI" in ran.err


def test_recorded_error_text(fp: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "/opt/fake/nvidia-smi")
    stdout, stderr, returncode = recording("h100-80gb-driver580", "lgip_i9")
    fp.register(
        ["/opt/fake/nvidia-smi", "mig", "-i", "9", "-lgip"],
        stdout=stdout,
        stderr=stderr,
        returncode=returncode,
    )
    ran = in_process(["profiles", "-i", "9"])
    assert ran.code == cli.EXIT_NVIDIA_SMI
    assert ran.err.endswith("  nvidia-smi: No devices were found\n")


# -- layouts ----------------------------------------------------------------------------------------

LAYOUT_YAML = """\
gpus:
  0: ["2g.12gb", "1g.6gb", "1g.6gb"]
  1: []
"""


def test_plan_apply_export_run(run: Smimig, tmp_path: Path) -> None:
    layout = tmp_path / "layout.yaml"
    layout.write_text(LAYOUT_YAML)
    planned = run("plan", str(layout))
    assert planned.code == 0
    assert "nvidia-smi -i 0 -mig 1" in planned.out
    dry = run("apply", str(layout), "--dry-run")
    assert dry.out.startswith("dry run, nothing changed:")
    assert "MIG off" in run("status").out.splitlines()[0]
    applied = run("apply", str(layout))
    assert applied.out.splitlines() == [
        "ran 3 step(s)",
        "  nvidia-smi -i 0 -mig 1",
        "  nvidia-smi -i 1 -mig 1",
        "  nvidia-smi mig -i 0 -cgi 2g.12gb:0,1g.6gb:2,1g.6gb:3 -C",
    ]
    assert run("apply", str(layout)).out == "nothing to do: already as the layout says\n"
    exported = run("export")
    assert exported.out == "gpus:\n  0: ['2g.12gb:0', '1g.6gb:2', '1g.6gb:3']\n  1: []\n  2: null\n  3: null\n"
    (tmp_path / "exported.yaml").write_text(exported.out)
    assert run("apply", str(tmp_path / "exported.yaml")).out == "nothing to do: already as the layout says\n"
    assert '"mig-enabled": true' not in run("export", "--format", "mig-parted").out
    assert "mig-configs:" in run("export", "--format", "mig-parted").out
    marks = tmp_path / "marks"
    marks.mkdir()
    touch = "import os, sys; open(os.path.join(sys.argv[1], os.environ['CUDA_VISIBLE_DEVICES']), 'w').close()"
    ran = run("run", "--each", "--", sys.executable, "-c", touch, str(marks))
    assert ran.code == 0
    uuids = sorted(device["uuid"] for device in json.loads(run("devices", "--json").out))
    assert sorted(path.name for path in marks.iterdir()) == uuids  # each process saw its own device
    assert sorted(line.split()[-3] for line in ran.out.splitlines()) == [f"{uuid}:" for uuid in uuids]
    failing = run("run", "--each", "-i", "0", "--", sys.executable, "-c", "raise SystemExit(3)")
    assert failing.code == 3


def test_impossible_layout_exit_code(run: Smimig, tmp_path: Path) -> None:
    layout = tmp_path / "layout.json"
    layout.write_text('{"gpus": {"0": ["4g.24gb", "1g.6gb"]}}')
    run("mode", "on", "-i", "0")
    result = run("apply", str(layout))
    assert result.code == cli.EXIT_USAGE
    assert result.err.startswith("smimig: GPU 0: the layout needs 5 memory slices; the GPU has 4")
    missing = run("plan", str(tmp_path / "nope.yaml"))
    assert missing.code == cli.EXIT_USAGE
