"""Signals: Ctrl-C, SIGTERM and SIGHUP stop smimig cleanly, never with a traceback.

apply rolls back on SIGTERM as on Ctrl-C, and a second Ctrl-C cannot cut its rollback short; ``lease`` and
``run --each`` pass the signal on to the job's process group, wait for it, release, and exit 128+N. In process
first (the job sends the signal to its parent, the test process running ``cli.main``), then, marked slow, the
same through the console script and the stand-in binary in subprocesses, signalled from outside.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

import smimig
from smimig import ApplyError, Layout, NvidiaSmiTimeout, cli, interrupts
from smimig.errors import Terminated
from smimig.exit_codes import ExitCode, explain
from smimig.jobs import JobGroup
from smimig.runner import ENV_VAR, RunResult
from smimig.sim import SimulatedRunner, StateFileRunner
from smimig.testing import Answer, FakeRunner
from tests.test_rollback import MUTATING, TARGET, node

SHELL_TRAP = 'trap "echo {name} > {mark}; exit 0" {name}; sleep 60 & {then}; wait'
"""A job that writes ``name`` to ``mark`` when signal ``name`` reaches it, after doing ``then``. Its ``sleep``
starts before ``then`` (which may mark it ready, or signal smimig): a signal sent after ``then`` finds it in
the job's process group, rather than racing its start and leaving it to hold the job's output open."""


@pytest.fixture(autouse=True)
def default_hang_up() -> Iterator[None]:
    """SIGHUP as a terminal session has it (a runner started under nohup would ignore it)."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGHUP, previous)


class Signalling:
    """A FakeRunner handler: the simulator's answers; at apply's ``nth`` mutating call (after running it), this
    process gets ``signum``; then, at the ``again``-th mutating call (the rollback's), it gets ``second``."""

    def __init__(self, runner: SimulatedRunner, nth: int, signum: int, again: int = 0, second: int = 0) -> None:
        self.runner, self.nth, self.signum, self.again, self.second, self.count = runner, nth, signum, again, second, 0
        self.answer_at_nth: Answer | None = None

    def __call__(self, args: tuple[str, ...]) -> Answer:
        result = self.runner.run(args)
        if any(option in args for option in MUTATING):
            self.count += 1
            if self.count == self.nth:
                if self.answer_at_nth is not None:
                    return self.answer_at_nth
                os.kill(os.getpid(), self.signum)
            if self.count == self.again:
                os.kill(os.getpid(), self.second)
        return result


# -- apply: SIGTERM rolls back; the rollback is not cut short ----------------------------------------------


def test_sigterm_during_apply_rolls_back_and_puts_the_handler_back() -> None:
    _, runner = node()
    starting = smimig.Smi(runner=runner).export()
    before = signal.getsignal(signal.SIGTERM)
    smi = smimig.Smi(runner=FakeRunner(handler=Signalling(runner, 3, signal.SIGTERM)))
    with pytest.raises(ApplyError) as caught:
        smi.apply(Layout.from_dict(TARGET))
    error = caught.value
    assert isinstance(error.failure, Terminated)
    assert error.failure.signal == signal.SIGTERM
    assert len(error.ran) == 2  # the third step ran in nvidia-smi, but its answer never reached apply
    assert error.state == starting == smi.export()
    assert signal.getsignal(signal.SIGTERM) == before
    assert explain(error) == (
        ExitCode.TERMINATED,
        ["smimig: apply stopped by SIGTERM part-way; the rollback restored the starting layout."],
    )


@pytest.mark.parametrize(
    "second",
    [
        signal.SIGINT,
        signal.SIGHUP,  # the smimig command raises it as it raises SIGTERM: a closed terminal mid-rollback
    ],
)
def test_a_second_signal_waits_for_the_rollback(second: int) -> None:
    _, runner = node()
    starting = smimig.Smi(runner=runner).export()
    # Ctrl-C at step 4 (as nvidia-smi made the 3g.20gb); the second signal at the rollback's first change
    handler = Signalling(runner, 4, signal.SIGINT, again=5, second=second)
    smi = smimig.Smi(runner=FakeRunner(handler=handler))
    with pytest.raises(ApplyError) as caught, interrupts.raising(signal.SIGTERM, signal.SIGHUP):
        smi.apply(Layout.from_dict(TARGET))
    assert isinstance(caught.value.failure, KeyboardInterrupt)
    assert caught.value.restored  # the rollback ran to its end
    assert smi.export() == starting
    assert explain(caught.value) == (
        ExitCode.INTERRUPTED,
        ["smimig: apply interrupted part-way; the rollback restored the starting layout."],
    )


def test_ctrl_c_during_the_rollback_of_a_failure_is_raised_after_it() -> None:
    _, runner = node()
    starting = smimig.Smi(runner=runner).export()
    handler = Signalling(runner, 4, signal.SIGINT, again=5, second=signal.SIGINT)
    handler.answer_at_nth = NvidiaSmiTimeout(["nvidia-smi"], 60.0)  # step 4 times out; Ctrl-C in the rollback
    smi = smimig.Smi(runner=FakeRunner(handler=handler))
    with pytest.raises(KeyboardInterrupt) as caught:
        smi.apply(Layout.from_dict(TARGET))
    report = caught.value.__cause__
    assert isinstance(report, ApplyError)
    assert isinstance(report.failure, NvidiaSmiTimeout)
    assert report.rollback_failure is None
    assert smi.export() == starting
    code, lines = explain(caught.value)
    assert code == ExitCode.INTERRUPTED
    assert lines[:2] == [
        "smimig: interrupted while apply rolled back; the rollback finished first:",
        "smimig: apply failed part-way; the rollback restored the starting layout.",
    ]


def test_ctrl_c_in_the_cli_apply_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(ENV_VAR, raising=False)
    layout = tmp_path / "layout.json"

    def smimig_cli(*args: str) -> tuple[int, str]:
        err = io.StringIO()
        return cli.main(["--simulate", "A30x1", *args], io.StringIO(), err), err.getvalue()

    layout.write_text('{"gpus": {"0": ["2g.12gb", "2g.12gb"]}}')
    assert smimig_cli("apply", str(layout))[0] == ExitCode.OK
    starting = smimig_cli("export")
    original = StateFileRunner.run
    calls = {"-cgi": 0}

    def interrupted_cgi(self: StateFileRunner, args: list[str]) -> RunResult:
        result = original(self, args)
        if "-cgi" in args:
            calls["-cgi"] += 1
            if calls["-cgi"] == 1:
                raise KeyboardInterrupt  # Ctrl-C while nvidia-smi made the new GPU instance
        return result

    monkeypatch.setattr(StateFileRunner, "run", interrupted_cgi)
    layout.write_text('{"gpus": {"0": ["4g.24gb"]}}')
    assert smimig_cli("apply", str(layout)) == (
        ExitCode.INTERRUPTED,
        "smimig: apply interrupted part-way; the rollback restored the starting layout.\n",
    )
    assert smimig_cli("export") == starting


# -- jobs: signals are passed on to the job's process group -------------------------------------------------


def lease_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str, str]]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("SMIMIG_LOCK_FILE", str(tmp_path / "lease.lock"))
    monkeypatch.delenv(ENV_VAR, raising=False)

    def smimig_cli(*args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(["--simulate", "A30x1", *args], out, err)
        return code, out.getvalue(), err.getvalue()

    assert smimig_cli("mode", "on", "-i", "0")[0] == ExitCode.OK
    return smimig_cli


def test_sigterm_to_a_lease_goes_to_its_command_then_the_device_is_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    smimig_cli = lease_node(tmp_path, monkeypatch)
    mark = tmp_path / "mark"
    job = SHELL_TRAP.format(name="TERM", mark=mark, then="kill -TERM $PPID")  # smimig (this process) gets it
    code, _, err = smimig_cli("lease", "1g.6gb", "--", "sh", "-c", job)
    assert code == ExitCode.TERMINATED
    assert mark.read_text() == "TERM\n"  # passed on to the command, which ended on it
    assert err.splitlines()[-1] == "smimig: stopped by SIGTERM: passed on to the command, which ended; device released."
    assert smimig_cli("gis")[1] == "(none)\n"


def test_sighup_to_run_each_goes_to_every_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    smimig_cli = lease_node(tmp_path, monkeypatch)
    assert smimig_cli("create-gi", "1g.6gb", "1g.6gb", "-i", "0", "-C")[0] == ExitCode.OK
    last = smimig.Smi(runner=StateFileRunner(tmp_path / "cache" / "smimig" / "simulate-A30x1.json", "A30", 1)).devices()
    marks, ready = tmp_path / "marks", tmp_path / "ready"
    marks.mkdir()
    ready.mkdir()
    # each job says it is ready (its trap set); the last one started waits for the others, then sends it
    wait_then_send = f"until [ $(ls {ready} | wc -l) -ge 2 ]; do sleep 0.01; done; kill -HUP $PPID"
    then = f'touch {ready}/$CUDA_VISIBLE_DEVICES; [ "$CUDA_VISIBLE_DEVICES" != {last[-1].uuid} ] || {{ {wait_then_send}; }}'
    job = SHELL_TRAP.format(name="HUP", mark=f"{marks}/$CUDA_VISIBLE_DEVICES", then=then)
    code, out, _ = smimig_cli("run", "--each", "--", "sh", "-c", job)
    assert code == ExitCode.HANGUP
    assert sorted(path.name for path in marks.iterdir()) == sorted(device.uuid for device in last)
    assert out.count(": exit 0\n") == 2


def test_a_job_group_forwards_to_the_whole_group_and_records_it() -> None:
    with JobGroup() as jobs:
        jobs.start(["sh", "-c", "sleep 60 & kill -TERM $PPID; wait"], dict(os.environ))
        (returncode,) = jobs.wait()
    assert jobs.received == signal.SIGTERM
    assert returncode == -signal.SIGTERM  # sh, waiting for its sleep, was stopped with it
    assert running_in_group(jobs.processes[0].pid) == []  # and so was its sleep


def running_in_group(group: int, patience: float = 10.0) -> list[int]:
    """The processes of process group ``group`` still running once ``patience`` seconds have passed or none
    is left (a process signalled at the same time as its parent may still be on its way out). Zombies do not
    count: an orphan's exit status waits for an init that reaps it, and a container's first process may never
    do so."""
    deadline = time.monotonic() + patience
    running = _running_in_group(group)
    while running and time.monotonic() < deadline:
        time.sleep(0.02)
        running = _running_in_group(group)
    return running


def _running_in_group(group: int) -> list[int]:
    running = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # it ended meanwhile
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            running.append(int(stat.parent.name))
    return running


def test_before_any_job_a_signal_does_what_it_did_before() -> None:
    with pytest.raises(KeyboardInterrupt):
        interrupted_in_a_job_group()


def interrupted_in_a_job_group() -> None:
    with JobGroup():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)


# -- the same from outside, through the console script and the stand-in binary (slow) -----------------------


def stand_in(tmp_path: Path, slow_once: str = "") -> dict[str, str]:
    """The environment for ``python -m smimig`` on a stand-in nvidia-smi (an A30 node in a state file); with
    ``slow_once``, the first call using that option waits 30 s first (long enough to be interrupted)."""
    script = tmp_path / "nvidia-smi"
    slow = (
        f'case " $* " in *" {slow_once} "*) [ -e "{tmp_path}/slowed" ] || {{ touch "{tmp_path}/slowed"; sleep 30; }};; esac\n'
        if slow_once
        else ""
    )
    script.write_text(
        f'#!/bin/sh\n{slow}exec "{sys.executable}" -m smimig.sim --state "{tmp_path}/node.json" --model A30x1 "$@"\n'
    )
    script.chmod(0o755)
    return {**os.environ, ENV_VAR: str(script), "SMIMIG_LOCK_FILE": str(tmp_path / "lease.lock")}


def smimig_run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smimig", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def start(env: dict[str, str], *args: str, session: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "smimig", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=session,
    )


def wait_for(*paths: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(path.exists() for path in paths):
        assert time.monotonic() < deadline, f"never appeared: {[str(path) for path in paths if not path.exists()]}"
        time.sleep(0.05)


@pytest.mark.slow
def test_sigterm_of_smimig_lease_from_outside(tmp_path: Path) -> None:
    env = stand_in(tmp_path)
    assert smimig_run(env, "mode", "on", "-i", "0").returncode == 0
    pid_file = tmp_path / "job.pid"
    running = start(
        env,
        "lease",
        "1g.6gb",
        "--",
        "sh",
        "-c",
        f'echo $$ > "{pid_file}.tmp"; mv "{pid_file}.tmp" "{pid_file}"; exec sleep 60',
    )
    wait_for(pid_file)
    job = int(pid_file.read_text())
    running.send_signal(signal.SIGTERM)
    _, err = running.communicate(timeout=60)
    assert running.returncode == 128 + signal.SIGTERM
    assert "Traceback" not in err
    assert err.splitlines()[-1] == "smimig: stopped by SIGTERM: passed on to the command, which ended; device released."
    assert running_in_group(job) == []  # the command's process group is gone
    assert smimig_run(env, "gis").stdout == "(none)\n"  # its device was released


@pytest.mark.slow
def test_ctrl_c_of_smimig_apply_from_outside(tmp_path: Path) -> None:
    env = stand_in(tmp_path, slow_once="-cgi")
    assert smimig_run(env, "mode", "on", "-i", "0").returncode == 0
    start_layout, target = tmp_path / "start.json", tmp_path / "target.json"
    start_layout.write_text('{"gpus": {"0": ["2g.12gb", "1g.6gb", "1g.6gb"]}}')
    target.write_text('{"gpus": {"0": ["4g.24gb"]}}')
    (tmp_path / "slowed").touch()  # the start goes in at full speed
    assert smimig_run(env, "apply", str(start_layout)).returncode == 0
    starting = smimig_run(env, "export").stdout
    (tmp_path / "slowed").unlink()
    # a session of its own, so that the SIGINT goes to its whole process group, as Ctrl-C at a terminal does
    running = start(env, "apply", str(target), session=True)
    wait_for(tmp_path / "slowed")  # destroyed everything, now creating the 4g.24gb: Ctrl-C
    os.killpg(running.pid, signal.SIGINT)
    _, err = running.communicate(timeout=60)
    assert running.returncode == 128 + signal.SIGINT
    assert err == "smimig: apply interrupted part-way; the rollback restored the starting layout.\n"
    assert smimig_run(env, "export").stdout == starting


@pytest.mark.slow
def test_sighup_of_smimig_run_each_from_outside(tmp_path: Path) -> None:
    env = stand_in(tmp_path)
    assert smimig_run(env, "mode", "on", "-i", "0").returncode == 0
    assert smimig_run(env, "create-gi", "1g.6gb", "1g.6gb", "-i", "0", "-C").returncode == 0
    marks, ready = tmp_path / "marks", tmp_path / "ready"
    marks.mkdir()
    ready.mkdir()
    job = SHELL_TRAP.format(
        name="HUP", mark=f"{marks}/$CUDA_VISIBLE_DEVICES", then=f"touch {ready}/$CUDA_VISIBLE_DEVICES"
    )
    running = start(env, "run", "--each", "--", "sh", "-c", job)
    deadline = time.monotonic() + 30
    while len(list(ready.iterdir())) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    running.send_signal(signal.SIGHUP)
    out, err = running.communicate(timeout=60)
    assert running.returncode == 128 + signal.SIGHUP
    assert "Traceback" not in err
    assert sorted(path.name for path in marks.iterdir()) == sorted(path.name for path in ready.iterdir())
    assert all((marks / name).read_text() == "HUP\n" for name in os.listdir(marks))
    assert out.count(": exit 0\n") == 2
