"""The public listing functions: the exact argv they send, and every error path (pytest-subprocess)."""

from __future__ import annotations

import importlib
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

import smimig
from smimig import Gpu, GpuInstance, MigMode, Placement
from smimig.runner import ENV_VAR, SubprocessRunner
from tests.fixtures import recording, text_of

SMI = "/opt/fake/nvidia-smi"  # never exists: pytest-subprocess answers instead


@pytest.fixture
def smi(monkeypatch: pytest.MonkeyPatch) -> smimig.Smi:
    monkeypatch.setenv(ENV_VAR, SMI)
    return smimig.Smi()


@pytest.fixture
def default_smi(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the module-level functions' default client at the fake binary."""
    monkeypatch.setenv(ENV_VAR, SMI)
    monkeypatch.setattr("smimig.client._default", None)


LISTINGS: list[tuple[str, dict[str, Any], list[str], str]] = [
    ("list_gpus", {}, ["-L"], "a30-driver545/L-two-cis.txt"),
    ("list_gi_profiles", {}, ["mig", "-lgip"], "a30-driver545/lgip.txt"),
    ("list_gi_profiles", {"gpu": 0}, ["mig", "-i", "0", "-lgip"], "a30-driver545/lgip.txt"),
    ("list_gi_placements", {"gpu": [0, 2]}, ["mig", "-i", "0,2", "-lgipp"], "a30-driver545/lgipp.txt"),
    ("list_gis", {"gpu": 0}, ["mig", "-i", "0", "-lgi"], "a30-driver545/lgi.txt"),
    (
        "list_ci_profiles",
        {"gpu": 0, "gi": 1},
        ["mig", "-i", "0", "-gi", "1", "-lcip"],
        "a30-driver545/lcip.txt",
    ),
    ("list_ci_profiles", {"gi": [1, 2]}, ["mig", "-gi", "1,2", "-lcip"], "a30-driver545/lcip.txt"),
    ("list_ci_placements", {"gpu": 0}, ["mig", "-i", "0", "-lcipp"], "synthetic/a30-lcipp.txt"),
    ("list_cis", {"gpu": 0, "gi": 2}, ["mig", "-i", "0", "-gi", "2", "-lci"], "a30-driver545/lci.txt"),
    ("list_cis", {}, ["mig", "-lci"], "a30-driver545/lci-none.txt"),
    ("list_mig_devices", {"gpu": 0}, ["-i", "0"], "a30-driver545/table-two-cis.txt"),
]


@pytest.mark.parametrize(("function", "kwargs", "args", "fixture"), LISTINGS)
def test_module_function_sends_exact_argv(
    fp: Any, default_smi: None, function: str, kwargs: dict[str, Any], args: list[str], fixture: str
) -> None:
    fp.register([SMI, *args], stdout=text_of(fixture))
    result = getattr(smimig, function)(**kwargs)
    assert fp.call_count([SMI, *args]) == 1
    assert isinstance(result, list)


def test_list_gis_returns_models(fp: Any, smi: smimig.Smi) -> None:
    fp.register([SMI, "mig", "-i", "0", "-lgi"], stdout=text_of("a30-driver545/lgi.txt"))
    assert smi.list_gis(0) == [
        GpuInstance(gpu=0, name="MIG 2g.12gb", profile_id=5, id=1, placement=Placement(0, 2)),
        GpuInstance(gpu=0, name="MIG 2g.12gb", profile_id=5, id=2, placement=Placement(2, 2)),
    ]


def test_list_gpus_selects_after_parsing(fp: Any, smi: smimig.Smi) -> None:
    # driver 580 refuses "-L -i 9" ("Option -i is not valid for this command"): smimig never sends it.
    fp.register([SMI, "-L"], stdout=text_of("a30-driver545/L-two-cis.txt"))
    gpus = smi.list_gpus([1, 3])
    assert [(gpu.index, gpu.name) for gpu in gpus] == [(1, "NVIDIA A30"), (3, "NVIDIA A30")]
    assert all(isinstance(gpu, Gpu) for gpu in gpus)


def test_mig_mode_argv_and_result(fp: Any, smi: smimig.Smi) -> None:
    args = [
        SMI,
        "-i",
        "0",
        "--query-gpu=index,pci.bus_id,mig.mode.current,mig.mode.pending",
        "--format=csv,noheader",
    ]
    fp.register(args, stdout="0, 00000000:17:00.0, Enabled, Enabled\n")
    assert smi.mig_mode(0) == [MigMode(gpu=0, bus_id="00000000:17:00.0", current=True, pending=True)]


def test_pci_device_ids_argv_and_result(fp: Any, smi: smimig.Smi) -> None:
    args = [SMI, "-i", "0,1", "--query-gpu=index,pci.device_id", "--format=csv,noheader"]
    fp.register(args, stdout="0, 0x20B710DE\n1, 0x233010DE\n")
    assert smi.pci_device_ids([0, 1]) == {0: "0x20B710DE", 1: "0x233010DE"}


def test_list_processes_reads_plain_nvidia_smi(fp: Any, smi: smimig.Smi) -> None:
    fp.register([SMI, "-i", "0"], stdout=text_of("synthetic/table-processes.txt"))
    processes = smi.list_processes(0)
    assert [(process.gpu, process.gi, process.ci, process.pid) for process in processes] == [
        (0, 1, 0, 41233),
        (1, None, None, 41240),
    ]


def test_no_mig_enabled_devices_is_an_empty_list(fp: Any, smi: smimig.Smi) -> None:
    stdout, stderr, returncode = recording("h100-80gb-driver580", "lgi")
    fp.register([SMI, "mig", "-lgi"], stdout=stdout, stderr=stderr, returncode=returncode)
    assert smi.list_gis() == []


# -- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("lgip_i9", ["mig", "-i", "9", "-lgip"]),
        ("bogus", ["mig", "-bogus"]),
        ("lgip_json", ["mig", "-lgip", "--format=json"]),
        ("L_i9", ["-L", "-i", "9"]),
    ],
)
def test_recorded_failures_raise_nvidia_smi_error(fp: Any, smi: smimig.Smi, name: str, args: list[str]) -> None:
    stdout, stderr, returncode = recording("h100-80gb-driver580", name)
    fp.register([SMI, *args], stdout=stdout, stderr=stderr, returncode=returncode)
    with pytest.raises(smimig.NvidiaSmiError) as caught:
        smi.run(args)
    error = caught.value
    assert (error.args_list, error.returncode, error.stdout, error.stderr) == (
        [SMI, *args],
        returncode,
        stdout,
        stderr,
    )
    assert error.command == " ".join([SMI, *args])
    assert f"exit code {returncode}" in str(error)


def test_no_such_gpu_raises_with_nvidia_smis_words(fp: Any, smi: smimig.Smi) -> None:
    stdout, stderr, returncode = recording("h100-80gb-driver580", "lgip_i9")
    fp.register([SMI, "mig", "-i", "9", "-lgip"], stdout=stdout, stderr=stderr, returncode=returncode)
    with pytest.raises(smimig.NvidiaSmiError) as caught:
        smi.list_gi_profiles(9)
    assert caught.value.returncode == 6
    assert caught.value.message == "No devices were found"


def test_error_text_with_exit_code_zero(fp: Any, smi: smimig.Smi) -> None:
    fp.register([SMI, "mig", "-lgi"], stdout="Failed to initialize NVML: Driver/library version mismatch\n")
    with pytest.raises(smimig.NvidiaSmiError, match="exit code 0") as caught:
        smi.list_gis()
    assert caught.value.returncode == 0


def test_another_listings_empty_answer_is_a_failure(fp: Any, smi: smimig.Smi) -> None:
    # "No compute instances found" is -lci's empty answer, never -lgi's: with exit code 6 it is a failure.
    fp.register([SMI, "mig", "-lgi"], stdout="No compute instances found: Not Found\n", returncode=6)
    with pytest.raises(smimig.NvidiaSmiError) as caught:
        smi.list_gis()
    assert caught.value.returncode == 6


def test_garbage_output_raises_parse_error(fp: Any, smi: smimig.Smi) -> None:
    fp.register([SMI, "mig", "-lgi"], stdout="<html>503 Service Unavailable</html>\n")
    with pytest.raises(smimig.ParseError) as caught:
        smi.list_gis()
    assert caught.value.text == "<html>503 Service Unavailable</html>\n"
    assert caught.value.line_number == 1
    assert (caught.value.result.args, caught.value.result.returncode) == ((SMI, "mig", "-lgi"), 0)


def test_timeout(fp: Any, smi: smimig.Smi) -> None:
    def hang(process: Any) -> None:
        raise subprocess.TimeoutExpired(process.args, 1.0)

    fp.register([SMI, "mig", "-lgi"], callback=hang)
    with pytest.raises(smimig.NvidiaSmiTimeout) as caught:
        smi.list_gis()
    assert caught.value.args_list == [SMI, "mig", "-lgi"]
    assert "did not finish" in str(caught.value)


def test_missing_binary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-nvidia-smi")
    monkeypatch.setenv(ENV_VAR, missing)
    with pytest.raises(smimig.NvidiaSmiNotFound) as caught:
        smimig.Smi().list_gis()
    assert caught.value.executable == missing
    assert "SMIMIG_NVIDIA_SMI" in str(caught.value)


def test_missing_from_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(smimig.NvidiaSmiNotFound, match="nvidia-smi not found"):
        smimig.Smi().list_gpus()


def test_binary_found_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    binary = tmp_path / "nvidia-smi"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ.get("PATH", ""))
    assert SubprocessRunner().resolve() == str(binary)
    assert SubprocessRunner(sudo=True).argv(["-L"]) == ["sudo", "-n", str(binary), "-L"]


def test_runner_uses_c_locale_and_no_shell(fp: Any, smi: smimig.Smi) -> None:
    seen: dict[str, Any] = {}

    def capture(process: Any) -> None:
        seen.update(process.kwargs)

    fp.register([SMI, "-L"], stdout=text_of("a30-driver545/L-mig-off.txt"), callback=capture)
    smi.list_gpus()
    assert seen["env"]["LC_ALL"] == "C"
    assert not seen.get("shell")


@pytest.mark.parametrize("bad", [-1, True, "0", 1.0, [], [0, -2], ["0"], "0,1", None.__class__])
def test_bad_selectors_never_start_a_process(fp: Any, smi: smimig.Smi, bad: Any) -> None:
    with pytest.raises(ValueError, match="gpu"):
        smi.list_gis(bad)
    assert list(fp.calls) == []


def test_import_runs_nothing(fp: Any) -> None:
    importlib.reload(smimig)
    assert list(fp.calls) == []


def test_sudo_with_custom_runner_is_refused() -> None:
    with pytest.raises(ValueError, match="sudo"):
        smimig.Smi(runner=SubprocessRunner(), sudo=True)


def test_a_binary_that_cannot_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    script = tmp_path / "nvidia-smi"
    script.write_text("no shebang here\n")
    script.chmod(0o755)
    monkeypatch.setenv(ENV_VAR, str(script))
    with pytest.raises(smimig.NvidiaSmiNotFound, match="could not be started"):
        smimig.Smi().list_gis()
