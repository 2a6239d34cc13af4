"""The local runner bounds what one nvidia-smi call can cost: output size, time, children left behind, bytes
that are not text."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from smimig import NvidiaSmiError, NvidiaSmiTimeout
from smimig import runner as runner_module
from smimig.runner import MAX_OUTPUT, SshRunner, SubprocessRunner


def stand_in(tmp_path: Path, body: str) -> str:
    script = tmp_path / "nvidia-smi"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(0o755)
    return str(script)


def test_output_past_the_cap_is_a_failure_not_gigabytes_read(tmp_path: Path) -> None:
    # `yes` never ends on its own: only the cap (and the killed process group) stops the call.
    runner = SubprocessRunner(stand_in(tmp_path, "exec yes 'GPU 0: NVIDIA A30 (UUID: GPU-0)'"), timeout=30)
    started = time.monotonic()
    with pytest.raises(NvidiaSmiError, match=f"more than {MAX_OUTPUT} bytes") as caught:
        runner.run(["-L"])
    assert time.monotonic() - started < 25  # stopped by the cap, not by the 30 s timeout
    assert len(caught.value.stdout) <= 4096  # the error quotes the start, it does not keep 16 MB


def alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it is dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_a_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = stand_in(tmp_path, f"sleep 60 &\necho $! > {pid_file}\nwait")
    with pytest.raises(NvidiaSmiTimeout):
        SubprocessRunner(script, timeout=0.5).run(["-L"])
    child = int(pid_file.read_text())
    for _ in range(100):  # SIGKILL is sent before the error is raised; the child is dead, or a zombie
        if not alive(child):
            break
        time.sleep(0.02)
    else:
        pytest.fail(f"the stand-in's child {child} outlived the timeout")


def test_bytes_that_are_not_utf8_are_a_failure_not_a_gpu_name(tmp_path: Path) -> None:
    script = stand_in(tmp_path, r"printf 'GPU 0: NVIDIA \377\376 (UUID: GPU-0)\n'")
    with pytest.raises(NvidiaSmiError, match="not UTF-8") as caught:
        SubprocessRunner(script).run(["-L"])
    assert "GPU 0: NVIDIA" in caught.value.stdout


def test_ordinary_output_is_read_whole(tmp_path: Path) -> None:
    lines = "".join(f"line {n}\n" for n in range(20000))  # more than a pipe's buffer, on both streams
    (tmp_path / "out.txt").write_text(lines)
    script = stand_in(tmp_path, f"cat {tmp_path / 'out.txt'}\ncat {tmp_path / 'out.txt'} >&2\nexit 3")
    result = SubprocessRunner(script).run(["-L"])
    assert (result.returncode, result.stdout, result.stderr) == (3, lines, lines)


def test_a_parse_error_quotes_a_clipped_line() -> None:
    from smimig import ParseError, parsers  # noqa: PLC0415

    text = "GPU 0: " + "x" * 1_000_000 + "\n"
    with pytest.raises(ParseError) as caught:
        parsers.parse_gpu_list(text)
    assert len(str(caught.value)) < 400
    assert caught.value.line == text.rstrip("\n")  # the attribute keeps all of it


def test_standard_error_past_the_cap_is_a_failure_too(tmp_path: Path) -> None:
    runner = SubprocessRunner(stand_in(tmp_path, "exec yes 'warning' >&2"), timeout=30)
    with pytest.raises(NvidiaSmiError, match=f"more than {MAX_OUTPUT} bytes") as caught:
        runner.run(["-L"])
    assert caught.value.stdout == ""
    assert caught.value.stderr.startswith("warning\n")


def test_an_interrupt_while_reading_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = stand_in(tmp_path, f"sleep 60 &\necho $! > {pid_file}\nwait")

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(KeyboardInterrupt):
            SubprocessRunner(script, timeout=30).run(["-L"])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    child = int(pid_file.read_text())
    for _ in range(100):
        if not alive(child):
            break
        time.sleep(0.02)
    else:
        pytest.fail(f"the stand-in's child {child} outlived the interrupt")


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("tool", "{bin}"),
        ("tool", "{empty}:{bin}"),  # found in the second directory
        ("tool", "{bin}:{bin}"),
        ("tool", ""),  # an empty PATH finds nothing
        ("plain", "{bin}"),  # not executable
        ("sub", "{bin}"),  # a directory
        ("missing", "{bin}"),
        ("{bin}/tool", "{empty}"),  # a directory part: checked as it is
        ("{bin}/plain", "{empty}"),
        ("./tool", "{empty}"),
        ("tool", ":"),  # empty entries: the current directory
    ],
)
def test_the_binary_is_found_as_shutil_finds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, path: str
) -> None:
    from smimig.runner import _which  # noqa: PLC0415  # smimig's own which, without shutil's import

    binaries, empty = tmp_path / "bin", tmp_path / "empty"
    (binaries / "sub").mkdir(parents=True)
    empty.mkdir()
    for file, mode in (("tool", 0o755), ("plain", 0o644)):
        (binaries / file).write_text("#!/bin/sh\n")
        (binaries / file).chmod(mode)
    (tmp_path / "tool").write_text("#!/bin/sh\n")
    (tmp_path / "tool").chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", path.format(bin=binaries, empty=empty))
    name = name.format(bin=binaries)
    assert _which(name) == shutil.which(name)


def test_no_path_at_all_is_the_system_default_as_shutil_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from smimig.runner import _which  # noqa: PLC0415

    monkeypatch.delenv("PATH", raising=False)
    assert _which("sh") == shutil.which("sh")
    assert _which("sh") is not None


# -- found by review: children left holding the pipes, processes smimig may not kill, signals at the start ----


def wait_until_dead(pid: int, what: str) -> None:
    for _ in range(100):
        if not alive(pid):
            return
        time.sleep(0.02)
    pytest.fail(f"{what} {pid} is still running")


def test_a_child_left_holding_the_pipes_does_not_hold_a_finished_call(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = stand_in(tmp_path, f"echo 'GPU 0: NVIDIA A30 (UUID: GPU-0)'\nsleep 30 &\necho $! > {pid_file}\nexit 0")
    started = time.monotonic()
    result = SubprocessRunner(script, timeout=20).run(["-L"])
    assert (result.returncode, result.stdout) == (0, "GPU 0: NVIDIA A30 (UUID: GPU-0)\n")
    assert time.monotonic() - started < 5  # not the 20 s timeout, nor the child's 30 s
    wait_until_dead(int(pid_file.read_text()), "the child left holding the pipes")


def test_a_process_smimig_may_not_kill_cannot_hold_the_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # As root's nvidia-smi under 'sudo -n' is to a user: the kill fails (here: does nothing).
    monkeypatch.setattr(runner_module, "_kill_group", lambda process: None)
    monkeypatch.setattr(runner_module, "_REAP", 0.5)
    flood = SubprocessRunner(stand_in(tmp_path, "exec yes 'GPU 0: NVIDIA A30 (UUID: GPU-0)'"), timeout=30)
    started = time.monotonic()
    with pytest.raises(NvidiaSmiError, match=f"more than {MAX_OUTPUT} bytes"):
        flood.run(["-L"])  # its pipe closed, it gets EPIPE rather than blocking on a full pipe
    assert time.monotonic() - started < 15
    pid_file = tmp_path / "hang.pid"
    hang = stand_in(tmp_path, f"echo $$ > {pid_file}\necho 'GPU 0: NVIDIA A30 (UUID: GPU-0)'\nexec sleep 100")
    started = time.monotonic()
    try:
        with pytest.raises(NvidiaSmiTimeout):
            SubprocessRunner(hang, timeout=1).run(["-L"])
        assert time.monotonic() - started < 1 + runner_module._REAP + 2
    finally:
        with contextlib.suppress(ValueError, ProcessLookupError, FileNotFoundError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_a_signal_while_the_process_starts_kills_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pid_file = tmp_path / "started.pid"
    script = stand_in(tmp_path, f"echo $$ > {pid_file}\nexec sleep 60")
    real = subprocess.Popen

    def interrupted_popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        process = real(*args, **kwargs)
        while not pid_file.exists() or not pid_file.read_text().strip():
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C before Popen has returned the process
        time.sleep(0.01)  # where Python would run the handler, inside Popen's own code
        return process

    monkeypatch.setattr(subprocess, "Popen", interrupted_popen)
    with pytest.raises(KeyboardInterrupt):
        SubprocessRunner(script, timeout=30).run(["-L"])
    wait_until_dead(int(pid_file.read_text()), "the process started as the signal came")


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), True, "60", None])
def test_a_timeout_is_a_positive_number_of_seconds(timeout: object) -> None:
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds"):
        SubprocessRunner("nvidia-smi", timeout=timeout)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds"):
        SshRunner("node1", timeout=timeout)  # type: ignore[arg-type]


def test_a_timeout_of_a_month_is_no_overflow(tmp_path: Path) -> None:
    script = stand_in(tmp_path, "echo 'GPU 0: NVIDIA A30 (UUID: GPU-0)'")
    for timeout in (30 * 86400, 1e12, float("inf")):
        assert SubprocessRunner(script, timeout=timeout).run(["-L"]).returncode == 0
