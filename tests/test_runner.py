"""The local runner bounds what one nvidia-smi call can cost: output size, time, children left behind, bytes
that are not text."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from smimig import NvidiaSmiError, NvidiaSmiTimeout
from smimig.runner import MAX_OUTPUT, SubprocessRunner


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
