"""One simulated node per (model, GPU count), whoever asks for it: the notebook, the CLI, the stand-in binary."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import smimig
from smimig.runner import ENV_VAR
from smimig.sim.__main__ import main as stand_in
from smimig.sim.state import ProcessState
from tests.command_line import Invoke, Smimig, caller


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("SMIMIG_SIM_STATE", raising=False)
    monkeypatch.delenv("SMIMIG_SIM_MODEL", raising=False)
    previous = smimig.use(None)
    yield tmp_path
    smimig.use(previous)


@pytest.fixture
def smimig_cli(invoke: Invoke) -> Smimig:
    """``smimig_cli("--simulate", "A30x1", "gis")``: each command-line test runs in process (the default suite)
    and through the console script (slow); a usage error raises SystemExit either way."""
    return caller(invoke)


def test_a_notebook_and_a_terminal_see_one_node(capsys: pytest.CaptureFixture[str], smimig_cli: Smimig) -> None:
    smi = smimig.simulate("A30x4")
    smimig.enable_mig(0)
    smimig.create_gi(0, ["2g.12gb", "2g.12gb"], ci=True)  # the mission's own call, module level, no GPU
    assert len(smi.list_gis(0)) == 2
    code, out, _ = smimig_cli("--simulate", "a30x4", "gis")  # another spelling, the same node
    assert code == 0
    assert out.count("MIG 2g.12gb") == 2
    assert stand_in(["--model", "A30X4", "mig", "-lgi"]) == 0  # the stand-in binary, same node again
    assert capsys.readouterr().out.count("MIG 2g.12gb") == 2
    code, _, _ = smimig_cli("--simulate", "A30-24GBx4", "destroy-ci", "-i", "0")
    assert code == 0
    assert smimig.list_cis(0) == []


def test_other_counts_are_other_nodes() -> None:
    smimig.simulate("H200x2").enable_mig(0)
    assert [mode.current for mode in smimig.simulate("H200x3").mig_mode()] == [False, False, False]
    assert [mode.current for mode in smimig.simulate("h200-141gbx2").mig_mode()] == [True, False]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty node spec"),
        ("   ", "empty node spec"),
        ("A30x100", "1 to 64 GPUs"),
        ("A30x\u00b2", "unknown GPU model"),
        ("V100", "unknown GPU model 'V100'; known: A100-40GB"),
    ],
)
def test_a_bad_node_spec_is_refused_before_anything_runs(
    spec: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    smimig_cli: Smimig,
) -> None:
    # Were the spec ignored, this "nvidia-smi" would run and leave its mark.
    marker = tmp_path / "ran"
    fake = tmp_path / "nvidia-smi"
    fake.write_text(f"#!/bin/sh\ntouch {marker}\n")
    fake.chmod(0o755)
    monkeypatch.setenv(ENV_VAR, str(fake))
    code, out, err = smimig_cli("--simulate", spec, "mode", "on", "-i", "0")
    assert (code, out) == (2, "")
    assert message in err
    assert not marker.exists()
    with pytest.raises(ValueError, match=message.split(";", maxsplit=1)[0]):
        smimig.simulate(spec)


def test_simulate_and_host_are_refused_together(smimig_cli: Smimig) -> None:
    code, _, err = smimig_cli("--simulate", "A30x1", "--host", "node3", "status")
    assert code == 2
    assert "--simulate and --host" in err


def test_the_stand_in_has_its_own_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert stand_in(["--help"]) == 0
    assert "smimig-sim [--state FILE]" in capsys.readouterr().out


def test_a_corrupt_state_file_says_which_file_and_how_to_start_over(
    cache: Path, capsys: pytest.CaptureFixture[str], smimig_cli: Smimig
) -> None:
    smimig.simulate("A30x2").enable_mig(0)
    state = cache / "smimig" / "simulate-A30x2.json"
    state.write_text(state.read_text()[:40])  # truncated, as a full disk or a killed editor leaves it
    assert stand_in(["--model", "A30x2", "-L"]) == 2
    err = capsys.readouterr().err
    assert str(state) in err
    assert "--reset" in err
    assert "Traceback" not in err
    code, out, err = smimig_cli("--simulate", "A30x2", "status")
    assert (code, out) == (2, "")
    assert str(state) in err
    assert "--reset-simulation" in err
    code, _, _ = smimig_cli("--simulate", "A30x2", "--reset-simulation", "status")
    assert code == 0


def test_placements_show_the_starts_not_a_count(smimig_cli: Smimig) -> None:
    smimig.simulate("A30x1").enable_mig(0)
    code, out, _ = smimig_cli("--simulate", "A30x1", "placements")
    assert code == 0
    assert "0:2, 2:2" in out
    assert "0:1, 1:1, 2:1, 3:1" in out


def test_a_create_on_a_mig_off_gpu_says_how_to_turn_mig_on(smimig_cli: Smimig) -> None:
    smimig.simulate("A30x1", reset=True)
    code, _, err = smimig_cli("--simulate", "A30x1", "create-gi", "2g.12gb", "-i", "0")
    assert code == 3
    assert "GPU 0 is not in MIG mode: turn it on first (smimig mode on -i 0)" in err


@pytest.mark.parametrize("profile", ["1g.10gb", "2g.12gb:1"])
def test_a_profile_or_start_the_gpu_does_not_have_lists_what_it_has(profile: str, smimig_cli: Smimig) -> None:
    smimig.simulate("A30x1", reset=True).enable_mig(0)
    with pytest.raises(smimig.MigOperationError) as caught:
        smimig.create_gi(0, [profile])
    assert "GPU 0 offers: 1g.6gb (id 14, 4/4 free, starts 0,1,2,3)" in str(caught.value)
    assert "2g.12gb (id 5, 2/2 free, starts 0,2)" in str(caught.value)
    code, _, err = smimig_cli("--simulate", "A30x1", "create-gi", profile, "-i", "0")
    assert code == 3
    assert "starts 0,2" in err


def test_no_nvidia_smi_mentions_the_simulator(monkeypatch: pytest.MonkeyPatch, smimig_cli: Smimig) -> None:
    monkeypatch.setenv(ENV_VAR, "/nonexistent/nvidia-smi")
    code, _, err = smimig_cli("gis")
    assert code == 3
    assert "smimig --simulate A30x4" in err
    assert 'smimig.simulate("A30x4")' in err


def test_sudo_that_is_not_installed_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, smimig_cli: Smimig
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no sudo there
    code, _, err = smimig_cli("--sudo", "gis")
    assert code == 3
    assert "sudo could not be started" in err
    assert "Run as root" in err


@pytest.mark.parametrize("host", ["h:22x", "h:0", "h:99999", "user@h:"])
def test_a_bad_host_port_is_refused_not_dropped(host: str, smimig_cli: Smimig) -> None:
    code, _, err = smimig_cli("--host", host, "gis")
    assert code == 2
    assert "the port after ':' is a number" in err


# -- the command line as typed ----------------------------------------------------------------------


def test_lease_options_may_come_after_the_profile(tmp_path: Path, smimig_cli: Smimig) -> None:
    smimig.simulate("A30x2", reset=True)
    smimig.enable_mig([0, 1])
    seen = tmp_path / "seen"
    job = ["sh", "-c", f'echo "$CUDA_VISIBLE_DEVICES" > {seen}']
    code, _, err = smimig_cli("--simulate", "A30x2", "lease", "1g.6gb", "-i", "1", "--", *job)  # README's order
    assert code == 0
    assert "on GPU 1" in err
    assert seen.read_text().startswith("MIG-")
    code, _, err = smimig_cli("--simulate", "A30x2", "lease", "1g.6gb", "--", "echo", "-i", "1")  # the job's -i
    assert code == 0
    assert "on GPU 0" in err


def test_a_command_after_dashes_goes_with_lease_and_run_only(smimig_cli: Smimig) -> None:
    with pytest.raises(SystemExit) as exited:
        smimig_cli("--simulate", "A30x1", "gis", "--", "echo")
    assert exited.value.code == 2


def test_plan_and_apply_print_json(tmp_path: Path, smimig_cli: Smimig) -> None:
    import json  # noqa: PLC0415

    smimig.simulate("A30x1", reset=True)
    layout = tmp_path / "layout.yaml"
    layout.write_text("gpus: {0: [2g.12gb, 2g.12gb]}\n")
    code, out, _ = smimig_cli("--simulate", "A30x1", "plan", str(layout), "--json")
    assert code == 0
    planned = json.loads(out)
    assert planned["layout"]["gpus"]["0"][0]["profile"] == "2g.12gb"
    code, out, _ = smimig_cli("--simulate", "A30x1", "apply", str(layout), "--json")
    assert code == 0
    assert [step["action"] for step in json.loads(out)["ran"]] == ["enable-mig", "create-gi"]


def test_errors_print_json_too(tmp_path: Path, smimig_cli: Smimig) -> None:
    import json  # noqa: PLC0415

    smimig.simulate("A30x1", reset=True).enable_mig(0)
    layout = tmp_path / "layout.yaml"
    layout.write_text("gpus: {0: [4g.24gb, 4g.24gb]}\n")
    code, out, err = smimig_cli("--simulate", "A30x1", "apply", str(layout), "--json")
    assert code == 2
    error = json.loads(out)["error"]
    assert (error["type"], error["exit_code"]) == ("LayoutError", 2)
    assert "4g.24gb" in error["message"]
    assert err  # the same words for a person, on stderr
    code, out, _ = smimig_cli("--simulate", "A30x1", "gis", "-i", "9", "--json")
    assert code == 3
    details = json.loads(out)["error"]["details"]
    assert (details["returncode"], details["args_list"][-1]) == (6, "-lgi")


def test_teardown_is_idempotent_and_takes_compute_instances_first(
    smimig_cli: Smimig,
) -> None:
    smi = smimig.simulate("A30x1", reset=True)
    smi.enable_mig(0)
    smi.create_gi(0, ["2g.12gb", "2g.12gb"], ci=True)
    code, out, _ = smimig_cli("--simulate", "A30x1", "destroy-gi", "-i", "0")  # CIs in them: taken first
    assert code == 0
    assert smi.list_gis(0) == []
    for command in ("destroy-ci", "destroy-gi"):  # the help's own example, again: nothing left, no failure
        code, out, _ = smimig_cli("--simulate", "A30x1", command, "-i", "0")
        assert (code, out.startswith("nothing to destroy")) == (0, True)
        code, out, _ = smimig_cli("--simulate", "A30x1", command, "-i", "0", "--json")
        assert (code, out) == (0, "[]\n")


def test_teardown_refuses_busy_instances_without_force(smimig_cli: Smimig) -> None:
    smi = smimig.simulate("A30x1", reset=True)
    smi.enable_mig(0)
    smi.create_gi(0, ["2g.12gb"], ci=True)
    smi.runner.change(lambda node: node.processes.append(ProcessState(4242, "python train.py", 0, 1, 0)))  # type: ignore[attr-defined]
    code, _, err = smimig_cli("--simulate", "A30x1", "destroy-gi", "-i", "0")
    assert code == 2
    assert "PID 4242 (python train.py)" in err
    assert "--force" in err
    assert len(smi.list_gis(0)) == 1


def test_doctor_save_dir_that_is_a_file_is_refused(tmp_path: Path, smimig_cli: Smimig) -> None:
    smimig.simulate("A30x1", reset=True)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine\n")
    code, _, err = smimig_cli("--simulate", "A30x1", "doctor", "--save-dir", str(a_file))
    assert code == 2
    assert "is a file" in err
    assert a_file.read_text() == "mine\n"
