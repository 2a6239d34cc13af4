"""Every error reaches the one table in smimig.exit_codes: its exit code and its lines on stderr, per command.

The command runs in this process (``cli.main``) against ``--simulate``'s state file, which the tests edit
through ``StateFileRunner.change`` to inject nvidia-smi's refusals and processes.
"""

from __future__ import annotations

import re
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

import smimig
from smimig import cli, errors
from smimig.exit_codes import RULES, ExitCode, exit_code, explain, job_exit_code
from smimig.runner import ENV_VAR
from smimig.sim import StateFileRunner
from smimig.sim.state import Fault, Node, ProcessState
from tests.command_line import Smimig, caller, in_process

README = Path(__file__).resolve().parent.parent / "README.md"
TERM = 128 + signal.SIGTERM


@pytest.fixture
def crash_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory the crash files go to."""
    where = tmp_path / "tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    return where


@pytest.fixture
def smimig_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash_dir: Path) -> Smimig:
    """``smimig_cli("status")`` is ``smimig --simulate A30x1 status``, in process, on a node of its own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("SMIMIG_LOCK_FILE", str(tmp_path / "lease.lock"))
    monkeypatch.delenv(ENV_VAR, raising=False)
    return caller(in_process, "A30x1")


@pytest.fixture
def node(tmp_path: Path, smimig_cli: Smimig) -> StateFileRunner:
    """The state file behind ``--simulate A30x1`` (the cache directory holds it), MIG on."""
    assert smimig_cli("mode", "on", "-i", "0").code == ExitCode.OK
    return StateFileRunner(tmp_path / "cache" / "smimig" / "simulate-A30x1.json", "A30", 1)


def refuse_next(runner: StateFileRunner, option: str, reason: str, later: int = 0) -> None:
    """The next call using ``option`` (or the one ``later`` calls after it) fails with ``reason``."""

    def edit(state: Node) -> None:
        state.faults.append(Fault(option, reason, nth=state.calls.get(option, 0) + 1 + later))

    runner.change(edit)


def layout_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "layout.json"
    path.write_text(text)
    return str(path)


# -- the table --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(set(errors.__all__) - {"SmimigError"}))
def test_every_error_class_has_a_row(name: str) -> None:
    kind = getattr(errors, name)
    assert any(issubclass(kind, rule.kind) for rule in RULES), f"{name} would be reported as a bug"


def test_a_row_for_the_base_class_would_hide_bugs() -> None:
    assert all(rule.kind not in (Exception, BaseException, errors.SmimigError) for rule in RULES)
    assert exit_code(RuntimeError("boom")) == ExitCode.UNEXPECTED


@pytest.mark.parametrize(("returncode", "code"), [(0, 0), (7, 7), (-signal.SIGTERM, TERM), (-signal.SIGKILL, 137)])
def test_job_exit_code(returncode: int, code: int) -> None:
    assert job_exit_code(returncode) == code


def test_help_docstring_and_readme_list_every_code(smimig_cli: Smimig, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        smimig_cli("--help", simulate=None)
    assert caught.value.code == 0
    shown = capsys.readouterr().out
    errors_section = README.read_text(encoding="utf-8").split("\n## Errors\n")[1].split("\n## ")[0]
    for code in ExitCode:
        assert f"  {code.value:<4} {code.meaning}\n" in shown
        assert re.search(rf"\b{code.value} ", cli.__doc__ or ""), code
        assert f"| {code.value} |" in errors_section, code
    for text in (shown, cli.__doc__ or "", errors_section):
        assert "128+N when signal N killed it" in " ".join(text.split())


# -- 0 and 2: nothing ran ---------------------------------------------------------------------------


def test_ok(smimig_cli: Smimig) -> None:
    assert smimig_cli("status").code == ExitCode.OK


def test_usage_error_is_argparse_exit_2(smimig_cli: Smimig) -> None:
    with pytest.raises(SystemExit) as caught:
        smimig_cli("frobnicate")
    assert caught.value.code == ExitCode.REFUSED


def test_bad_argument(smimig_cli: Smimig) -> None:
    result = smimig_cli("--reset-simulation", "status", simulate=None)
    assert (result.code, result.lines) == (ExitCode.REFUSED, ["smimig: --reset-simulation goes with --simulate"])


def test_missing_layout_file(smimig_cli: Smimig, tmp_path: Path) -> None:
    result = smimig_cli("plan", str(tmp_path / "nope.yaml"))
    assert result.code == ExitCode.REFUSED
    assert result.lines == [f"smimig: [Errno 2] No such file or directory: '{tmp_path / 'nope.yaml'}'"]


def test_impossible_layout_before_any_step(smimig_cli: Smimig, node: StateFileRunner, tmp_path: Path) -> None:
    result = smimig_cli("apply", layout_file(tmp_path, '{"gpus": {"0": ["4g.24gb", "1g.6gb"]}}'))
    assert result.code == ExitCode.REFUSED
    assert result.lines == [
        "smimig: GPU 0: the layout needs 5 memory slices; the GPU has 4",
        "  layouts that fit instead: [4g.24gb]; [2g.12gb, 1g.6gb]; [1g.6gb]",
    ]
    assert smimig_cli("gis").out == "(none)\n"


def test_busy_instance_without_force(smimig_cli: Smimig, node: StateFileRunner, tmp_path: Path) -> None:
    assert smimig_cli("create-gi", "2g.12gb", "-i", "0", "-C").code == ExitCode.OK
    node.change(lambda state: state.processes.append(ProcessState(4242, "python train.py", 0, 1, 0)))
    layout = layout_file(tmp_path, '{"gpus": {"0": ["4g.24gb"]}}')
    result = smimig_cli("apply", layout)
    assert result.code == ExitCode.REFUSED
    assert result.lines == [
        "smimig: refusing to destroy instances that processes run on or leases hold; nothing was changed:",
        "  PID 4242 (python train.py) on GPU 0 GI 1 CI 0",
        "  Stop them (or let the leases end), or add --force to go ahead anyway.",
    ]
    forced = smimig_cli("apply", layout, "--force")  # past smimig's check: nvidia-smi itself refuses
    assert (forced.code, forced.lines[0]) == (
        ExitCode.NVIDIA_SMI,
        "smimig: apply failed; nothing was changed.",
    )


def test_no_room_for_a_lease(smimig_cli: Smimig, node: StateFileRunner) -> None:
    assert smimig_cli("create-gi", "4g.24gb", "-i", "0").code == ExitCode.OK
    result = smimig_cli("lease", "1g.6gb", "--", "true")
    assert result.code == ExitCode.REFUSED
    assert result.lines == ["smimig: no room for 1g.6gb on any GPU in MIG mode (GPU 0: 1g.6gb 0/4 free)"]


def test_a_job_that_cannot_start(smimig_cli: Smimig, node: StateFileRunner, tmp_path: Path) -> None:
    result = smimig_cli("lease", "1g.6gb", "--", str(tmp_path / "no-such-program"))
    assert result.code == ExitCode.REFUSED
    assert result.lines[-1] == f"smimig: [Errno 2] No such file or directory: '{tmp_path / 'no-such-program'}'"
    assert smimig_cli("gis").out == "(none)\n"  # the lease was given back


def test_no_mig_devices_to_run_on(smimig_cli: Smimig, node: StateFileRunner) -> None:
    result = smimig_cli("run", "--each", "--", "true")
    assert (result.code, result.lines) == (ExitCode.REFUSED, ["smimig: no MIG devices to run on"])


# -- 3: nvidia-smi or ssh failed, nothing changed ---------------------------------------------------


def test_nvidia_smi_failed(smimig_cli: Smimig) -> None:
    result = smimig_cli("gis", "-i", "9")
    assert result.code == ExitCode.NVIDIA_SMI
    assert result.lines == [
        "smimig: nvidia-smi mig -i 9 -lgi failed with exit code 6.",
        "  nvidia-smi: No devices were found",
    ]


def test_a_change_that_changed_nothing(smimig_cli: Smimig, node: StateFileRunner) -> None:
    refuse_next(node, "-cgi", "Insufficient Resources")
    result = smimig_cli("create-gi", "1g.6gb", "-i", "0")
    assert result.code == ExitCode.NVIDIA_SMI
    assert result.lines[0] == "smimig: nvidia-smi mig -i 0 -cgi 1g.6gb failed; nothing was changed."


def test_apply_whose_first_step_fails_changed_nothing(
    smimig_cli: Smimig, node: StateFileRunner, tmp_path: Path
) -> None:
    refuse_next(node, "-cgi", "Insufficient Resources")
    result = smimig_cli("apply", layout_file(tmp_path, '{"gpus": {"0": ["4g.24gb"]}}'))
    assert result.code == ExitCode.NVIDIA_SMI
    assert result.lines[:2] == [
        "smimig: apply failed; nothing was changed.",
        "  failed: nvidia-smi mig -i 0 -cgi 4g.24gb:0 -C failed (exit code 255): Unable to create a GPU instance on"
        " GPU  0 using profile 4g.24gb:0: Insufficient Resources; Failed to create GPU instances: Insufficient"
        " Resources",
    ]
    assert not any(line.startswith(("  ran:", "  restored:")) for line in result.lines)


def test_a_lease_whose_compute_instance_fails(smimig_cli: Smimig, node: StateFileRunner) -> None:
    refuse_next(node, "-cci", "Insufficient Resources")
    result = smimig_cli("lease", "1g.6gb", "--", "true")
    assert result.code == ExitCode.NVIDIA_SMI
    assert result.lines[0].startswith("smimig: created GPU instance 1 on GPU 0 but no MIG device in it: ")
    assert smimig_cli("gis").out == "(none)\n"


def test_nvidia_smi_not_found(smimig_cli: Smimig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nothing-here"))
    result = smimig_cli("status", simulate=None)
    assert result.code == ExitCode.NVIDIA_SMI
    assert len(result.lines) == 1
    assert result.lines[0].startswith("smimig: nvidia-smi not found (tried ")


def test_nvidia_smi_timeout(smimig_cli: Smimig, monkeypatch: pytest.MonkeyPatch, fp: Any) -> None:
    monkeypatch.setenv(ENV_VAR, "/opt/fake/nvidia-smi")

    def hang(process: Any) -> None:
        raise subprocess.TimeoutExpired(process.args, 60)

    fp.register(["/opt/fake/nvidia-smi", "mig", "-lgi"], callback=hang)
    result = smimig_cli("gis", simulate=None)
    assert (result.code, result.lines) == (
        ExitCode.NVIDIA_SMI,
        ["smimig: /opt/fake/nvidia-smi mig -lgi did not finish within 60 s"],
    )


def test_ssh_failed(smimig_cli: Smimig, fp: Any) -> None:
    fp.register(["ssh", fp.any()], returncode=255, stderr="ssh: connect to host gpu7 port 22: Connection refused\n")
    result = smimig_cli("--host", "gpu7", "gis", simulate=None)
    assert (result.code, result.lines) == (
        ExitCode.NVIDIA_SMI,
        ["smimig: ssh to gpu7 failed (exit code 255): ssh: connect to host gpu7 port 22: Connection refused"],
    )


# -- 4: output smimig cannot read -------------------------------------------------------------------


def test_output_smimig_cannot_read(smimig_cli: Smimig, monkeypatch: pytest.MonkeyPatch, fp: Any) -> None:
    monkeypatch.setenv(ENV_VAR, "/opt/fake/nvidia-smi")
    fp.register(["/opt/fake/nvidia-smi", "mig", "-lgi"], stdout="something new\n")
    result = smimig_cli("gis", simulate=None)
    assert result.code == ExitCode.PARSE
    assert result.lines[0].startswith("smimig: nvidia-smi printed something smimig does not understand: ")
    assert result.lines[-1] == "  Please report it with the output of the same nvidia-smi command."


# -- 5: a change failed part-way --------------------------------------------------------------------


def test_a_change_that_failed_part_way(smimig_cli: Smimig, node: StateFileRunner) -> None:
    result = smimig_cli("create-gi", "2g.12gb", "2g.12gb", "1g.6gb", "-i", "0")
    assert result.code == ExitCode.PARTIAL
    assert result.lines[0] == (
        "smimig: nvidia-smi mig -i 0 -cgi 2g.12gb,2g.12gb,1g.6gb failed part-way: 2 change(s) were made before it."
    )


def test_apply_failed_part_way_lists_what_ran_and_what_was_restored(
    smimig_cli: Smimig, node: StateFileRunner, tmp_path: Path
) -> None:
    assert smimig_cli("create-gi", "2g.12gb", "2g.12gb", "-i", "0", "-C").code == ExitCode.OK
    refuse_next(node, "-cgi", "Insufficient Resources")
    result = smimig_cli("apply", layout_file(tmp_path, '{"gpus": {"0": ["4g.24gb"]}}'))
    assert result.code == ExitCode.PARTIAL
    assert result.lines[0] == "smimig: apply failed part-way; the rollback restored the starting layout."
    assert result.lines[1].startswith("  failed: nvidia-smi mig -i 0 -cgi 4g.24gb:0 -C failed (exit code 255): ")
    assert result.lines[2:] == [
        "  ran: nvidia-smi mig -i 0 -gi 1,2 -dci",
        "  ran: nvidia-smi mig -i 0 -gi 1,2 -dgi",
        "  restored: nvidia-smi mig -i 0 -cgi 2g.12gb:0,2g.12gb:2 -C",
        "  state now:",
        "    GPU 0: 2g.12gb:0, 2g.12gb:2",
    ]


def test_a_layout_refused_after_a_step_ran_is_part_way(smimig_cli: Smimig, tmp_path: Path) -> None:
    # MIG off: the driver lists no profiles, so the GPU is planned once MIG is on, and only then refused.
    result = smimig_cli("apply", layout_file(tmp_path, '{"gpus": {"0": ["4g.24gb", "4g.24gb"]}}'))
    assert result.code == ExitCode.PARTIAL
    assert result.lines == [
        "smimig: apply failed part-way; the rollback restored the starting layout.",
        "  failed: GPU 0: 2 x 4g.24gb, but at most 1 fit (Total 1)"
        " (found once MIG was on: with MIG off this driver lists no profiles)",
        "    layouts that fit instead: [4g.24gb]",
        "  ran: nvidia-smi -i 0 -mig 1",
        "  restored: nvidia-smi -i 0 -mig 0",
        "  state now:",
        "    GPU 0: MIG off",
    ]
    assert smimig_cli("status").out.splitlines()[0].endswith("MIG off")


def test_a_lease_left_behind(smimig_cli: Smimig, node: StateFileRunner) -> None:
    refuse_next(node, "-dgi", "In use by another client")
    result = smimig_cli("lease", "1g.6gb", "--", "sh", "-c", "exit 7")
    assert result.code == ExitCode.PARTIAL
    assert result.lines[1:3] == [
        "smimig: the command exited with code 7; then releasing its device failed",
        "smimig: could not release the lease on GPU 0 (GI 1, CI 0, MIG-89b757f7-3c4c-5b1c-9476-a11b14aa9308);"
        " still there: GPU instance 1: nvidia-smi mig -i 0 -gi 1 -dgi failed (exit code 255): Unable to destroy"
        " GPU instance ID  1 from GPU  0: In use by another client; Failed to destroy GPU instances: In use by"
        " another client",
    ]
    assert result.lines[-1] == (
        "  To remove it once it is free: nvidia-smi mig -i 0 -gi 1 -ci 0 -dci; nvidia-smi mig -i 0 -gi 1 -dgi"
    )


# -- jobs: their own exit codes ---------------------------------------------------------------------


def test_run_each_passes_the_first_non_zero_code(smimig_cli: Smimig, node: StateFileRunner) -> None:
    assert smimig_cli("create-gi", "1g.6gb", "1g.6gb", "-i", "0", "-C").code == ExitCode.OK
    job = 'case "$CUDA_VISIBLE_DEVICES" in MIG-89b7*) exit 0;; *) exit 6;; esac'
    assert smimig_cli("run", "--each", "--", "sh", "-c", job).code == 6


def test_run_each_job_killed_by_a_signal(smimig_cli: Smimig, node: StateFileRunner) -> None:
    assert smimig_cli("create-gi", "1g.6gb", "-i", "0", "-C").code == ExitCode.OK
    result = smimig_cli("run", "--each", "--", "sh", "-c", "kill -TERM $$")
    assert result.code == TERM
    assert result.out.endswith(": exit 143 (killed by SIGTERM)\n")


def test_lease_job_killed_by_a_signal(smimig_cli: Smimig, node: StateFileRunner) -> None:
    result = smimig_cli("lease", "1g.6gb", "--", "sh", "-c", "kill -TERM $$")
    assert result.code == TERM
    assert smimig_cli("gis").out == "(none)\n"


# -- 1: a bug, and Ctrl-C ---------------------------------------------------------------------------


def test_a_bug_is_one_line_and_a_file(smimig_cli: Smimig, monkeypatch: pytest.MonkeyPatch, crash_dir: Path) -> None:
    def broken(self: smimig.Smi, gpu: object = None) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(smimig.Smi, "status", broken)
    result = smimig_cli("status")
    assert result.code == ExitCode.UNEXPECTED
    assert result.out == ""
    (line,) = result.lines
    (saved,) = crash_dir.glob("smimig-crash-*.txt")
    assert (
        line
        == f"smimig: unexpected error (a bug), RuntimeError: boom; please report it with the traceback saved in {saved}"
    )
    assert re.fullmatch(r"smimig-crash-\d{8}-\d{6}-\d+-.+\.txt", saved.name)
    text = saved.read_text(encoding="utf-8")
    assert "argv: ['--simulate', 'A30x1', 'status']" in text
    assert "Traceback (most recent call last):" in text
    assert text.endswith("RuntimeError: boom\nsecond line\n")


def test_a_bug_whose_traceback_cannot_be_saved(
    smimig_cli: Smimig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(self: smimig.Smi, gpu: object = None) -> None:
        raise KeyError(3)

    monkeypatch.setattr(smimig.Smi, "status", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "not-a-directory"))
    result = smimig_cli("status")
    assert result.code == ExitCode.UNEXPECTED
    (line,) = result.lines
    assert line.startswith("smimig: unexpected error (a bug), KeyError: 3; its traceback could not be saved: ")


def test_ctrl_c(smimig_cli: Smimig, monkeypatch: pytest.MonkeyPatch, crash_dir: Path) -> None:
    def interrupted(self: smimig.Smi, gpu: object = None) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(smimig.Smi, "status", interrupted)
    result = smimig_cli("status")
    assert (result.code, result.lines) == (ExitCode.INTERRUPTED, ["smimig: interrupted."])
    assert list(crash_dir.iterdir()) == []


def test_a_closed_pipe_is_not_an_error_of_smimig(smimig_cli: Smimig, monkeypatch: pytest.MonkeyPatch) -> None:
    def closed(self: smimig.Smi, gpu: object = None) -> None:
        raise BrokenPipeError

    monkeypatch.setattr(smimig.Smi, "status", closed)
    with pytest.raises(BrokenPipeError):  # main_exit silences it: "smimig gis | head" is fine
        smimig_cli("status")


def test_explain_without_the_command_line() -> None:
    code, lines = explain(errors.LayoutError("GPU 0: no GPU instance profile '9g.1tb'"))
    assert (code, lines) == (ExitCode.REFUSED, ["smimig: GPU 0: no GPU instance profile '9g.1tb'"])
