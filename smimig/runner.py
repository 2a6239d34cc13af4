"""The one seam between smimig and the outside world.

A :class:`Runner` takes nvidia-smi's arguments (without the program name) and returns a
:class:`RunResult`. :class:`SubprocessRunner` runs the real binary; anything else with a ``run`` method of
the same shape (a simulator, a fake in a user's tests, a remote shell) plugs into ``smimig.Smi(runner=…)``.
:class:`SshRunner` runs it on another machine through OpenSSH. This module is the only place in smimig where
a local process starts.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from typing import IO, Protocol, runtime_checkable

import attrs

from smimig import interrupts
from smimig._repr import AttrsRepr
from smimig.errors import NvidiaSmiError, NvidiaSmiNotFound, NvidiaSmiTimeout, RemoteError

__all__ = [
    "DEFAULT_TIMEOUT",
    "ENV_VAR",
    "MAX_OUTPUT",
    "RunResult",
    "Runner",
    "SshRunner",
    "SubprocessRunner",
    "spawn",
    "sudo_works",
]

ENV_VAR = "SMIMIG_NVIDIA_SMI"
"""The environment variable that names the nvidia-smi binary (or a stand-in) to run."""

DEFAULT_TIMEOUT = 60.0
"""Seconds before a call is given up; creating instances on a busy GPU can take several seconds."""


@attrs.frozen(repr=False)
class RunResult(AttrsRepr):
    """What one run of nvidia-smi gave: the full argv that ran, its exit code, stdout and stderr."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


@runtime_checkable
class Runner(Protocol):
    """Runs nvidia-smi with the given arguments (``["mig", "-lgi"]``) and returns what it printed.

    A runner raises :class:`~smimig.NvidiaSmiNotFound` or :class:`~smimig.NvidiaSmiTimeout` when it cannot
    get an answer; a non-zero exit code is returned, not raised: the caller decides what it means.
    """

    def run(self, args: Sequence[str]) -> RunResult:
        """Run nvidia-smi with ``args`` and return its exit code and output."""
        ...


MAX_OUTPUT = 16 * 1024 * 1024
"""Bytes of standard output (and, apart, of standard error) read from one call at most. nvidia-smi prints
kilobytes, even for a node of many GPUs; more is a broken binary or a stand-in gone wrong, and reading it all
would hold the caller (100 MB took 21 s and 2 GB of memory)."""


class _Captured:
    """One call's exit code and output, as bytes; ``too_long`` when it printed more than MAX_OUTPUT."""

    __slots__ = ("returncode", "stderr", "stdout", "too_long")

    def __init__(self, returncode: int, stdout: bytes, stderr: bytes, too_long: bool = False) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.too_long = too_long


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill the process and everything it started: it leads its own session, so its group id is its pid.

    A pid of 0 or less is not a process smimig started (a test's fake): killpg(0) would be our own group.
    """
    if process.pid > 0:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    else:
        process.kill()


def _is_pipe(stream: IO[bytes] | None) -> bool:
    try:
        return stream is not None and stream.fileno() >= 0
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return False


# What subprocess.communicate uses on POSIX: poll where there is one (no descriptor of its own, unlike epoll).
_Selector = getattr(selectors, "PollSelector", selectors.SelectSelector)


_IDLE = 0.05
"""Seconds of silence on the pipes after which the runner looks whether the process itself has ended: once
it has, what it wrote is all in the pipes, and a child it left running (holding them open) is not waited for."""

_REAP = 2.0
"""Seconds a killed call's process is waited for; one smimig may not kill (``sudo``'s, run as root) is left to
end on its own rather than holding the caller."""


def _ended(process: subprocess.Popen[bytes]) -> bool:
    """Whether the process has exited, without reaping it: its pid, and so its group's id, stay its own."""
    if not hasattr(os, "waitid"):  # not on macOS: the pipes' end is then the only sign
        return False
    try:
        return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True  # reaped already


def _read_both(
    process: subprocess.Popen[bytes], argv: list[str], timeout: float, deadline: float
) -> tuple[bytes, bytes, bool]:
    """Read the process's standard output and error in this thread, as subprocess.communicate does on POSIX,
    until both end, or the process has ended and the pipes stay silent (:data:`_IDLE`: a child it left running
    holds them; it is killed with the group), or a stream passes :data:`MAX_OUTPUT` bytes (the third value is
    then True: the whole process group is killed and reading stops). One selector rather than a reader thread
    a stream: two threads a call were a tenth of ``smimig status``'s start-up.

    Raises:
        subprocess.TimeoutExpired: not done by ``deadline`` (``time.monotonic()``).
    """
    out, err = process.stdout, process.stderr
    if out is None or err is None:
        raise ValueError("both streams must be pipes")
    chunks: dict[int, list[bytes]] = {out.fileno(): [], err.fileno(): []}
    sizes = dict.fromkeys(chunks, 0)
    too_long = False
    with _Selector() as selector:
        for descriptor in chunks:
            selector.register(descriptor, selectors.EVENT_READ)
        while selector.get_map() and not too_long:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise subprocess.TimeoutExpired(argv, timeout)
            ready = selector.select(min(remaining, _IDLE))  # in steps: no timeout too large for poll()
            if not ready and _ended(process):  # all it wrote is in; what holds the pipes is a child it left
                _kill_group(process)  # not reaped yet: its pid is still its group's id
                break
            for key, _ in ready:
                data = os.read(key.fd, 65536)
                if not data:
                    selector.unregister(key.fd)
                    continue
                sizes[key.fd] += len(data)
                if sizes[key.fd] > MAX_OUTPUT:
                    _kill_group(process)
                    too_long = True
                    break
                chunks[key.fd].append(data)
    return b"".join(chunks[out.fileno()]), b"".join(chunks[err.fileno()]), too_long


def _close_pipes(process: subprocess.Popen[bytes]) -> None:
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def _run_captured(argv: list[str], timeout: float) -> _Captured:
    """Run ``argv`` with no shell and no input, in the C locale, in its own session; capture at most
    :data:`MAX_OUTPUT` bytes of each stream. On timeout, too much output or any exception (Ctrl-C) the whole
    process group is killed, so no child of it is left behind (a wrapper script's children included); one
    smimig may not kill (root's, under ``sudo``) finds its pipes closed and is waited for no longer than
    :data:`_REAP` seconds."""
    # A signal while Popen starts the child would leave it running unknown to us: held back until it is known.
    with interrupts.deferring(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as held:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_c_locale_env(os.environ),
            start_new_session=True,
        )
    try:
        if held.received is not None:
            signal.raise_signal(held.received)  # to the handler it had: now the child is known, and killed
        if not _is_pipe(process.stdout) or not _is_pipe(process.stderr):  # a test double's Popen: nothing to bound
            stdout, stderr = process.communicate(timeout=timeout)
            return _Captured(process.returncode, stdout or b"", stderr or b"")
        deadline = time.monotonic() + timeout
        try:
            stdout, stderr, too_long = _read_both(process, argv, timeout, deadline)
        finally:
            _close_pipes(process)  # all that will be read: a writer still at it gets EPIPE, not a full pipe
        if too_long:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(_REAP)
            return _Captured(
                -signal.SIGKILL if process.returncode is None else process.returncode, stdout, stderr, True
            )
        returncode = process.wait(max(deadline - time.monotonic(), 0.0))
    except BaseException:  # a timeout, Ctrl-C, anything: leave no process of this call behind
        if process.returncode is None:  # not reaped: its pid is still its group's id, even if it has ended
            _kill_group(process)
        _close_pipes(process)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(_REAP)
        raise
    return _Captured(returncode, stdout, stderr)


def _decoded(argv: list[str], captured: _Captured) -> RunResult:
    """The run as text; output that is too long or not UTF-8 is a failure of nvidia-smi, not text to parse."""
    stdout = captured.stdout.decode("utf-8", errors="replace")
    stderr = captured.stderr.decode("utf-8", errors="replace")
    if captured.too_long:
        raise NvidiaSmiError(
            argv, captured.returncode, stdout[:4096], stderr[:4096], f"printed more than {MAX_OUTPUT} bytes: stopped"
        )
    for name, raw in (("standard output", captured.stdout), ("standard error", captured.stderr)):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise NvidiaSmiError(
                argv,
                captured.returncode,
                stdout,
                stderr,
                f"its {name} is not UTF-8 text (byte {error.start}: {raw[error.start : error.start + 1]!r})",
            ) from None
    return RunResult(tuple(argv), captured.returncode, stdout, stderr)


def _which(name: str) -> str | None:
    """Where ``name`` is found as an executable file, as :func:`shutil.which` finds it (a name with a directory
    part is checked as it is); None if nowhere. Not shutil itself: its import (bz2, lzma, zlib, fnmatch) cost
    every command 2 ms."""

    def executable(path: str) -> bool:
        return os.path.exists(path) and os.access(path, os.X_OK) and not os.path.isdir(path)

    if os.path.dirname(name):
        return name if executable(name) else None
    path = os.environ.get("PATH")
    if path is None:
        path = os.confstr("CS_PATH") if "CS_PATH" in os.confstr_names else None
        path = path or os.defpath
    if not path:
        return None
    seen = set()
    for directory in path.split(os.pathsep):
        if directory in seen:
            continue
        seen.add(directory)
        candidate = os.path.join(directory, name)
        if executable(candidate):
            return candidate
    return None


def _c_locale_env(base: Mapping[str, str]) -> dict[str, str]:
    env = dict(base)
    env["LC_ALL"] = "C"
    env["LANG"] = "C"
    env.pop("LANGUAGE", None)
    return env


def _positive_seconds(instance: object, attribute: attrs.Attribute[float], value: object) -> None:
    """A timeout is a positive number of seconds (``math.inf``: none); not a bool, not NaN."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{attribute.name} must be a positive number of seconds; got {value!r}")


@attrs.define(repr=False)
class SubprocessRunner(AttrsRepr):
    """Runs the real ``nvidia-smi`` as a local process.

    Args:
        executable: the binary to run. Default: ``$SMIMIG_NVIDIA_SMI`` if set, else ``nvidia-smi`` on PATH
            (looked up at each call, not at import).
        timeout: seconds before the call is abandoned with :class:`~smimig.NvidiaSmiTimeout`.
        sudo: prefix the command with ``sudo -n`` (never prompts: fails instead, if a password is needed).

    The process gets no shell, no standard input, and the C locale, so its output is the text smimig's
    parsers know.
    """

    executable: str | None = None
    timeout: float = attrs.field(default=DEFAULT_TIMEOUT, validator=_positive_seconds)
    sudo: bool = False

    def resolve(self) -> str:
        """The binary this runner will start: a path, or the bare name if it is not on PATH."""
        name = self.executable or os.environ.get(ENV_VAR) or "nvidia-smi"
        return _which(name) or name

    def argv(self, args: Sequence[str]) -> list[str]:
        """The full argument list for ``args``, as it will be started."""
        prefix = ["sudo", "-n"] if self.sudo else []
        return [*prefix, self.resolve(), *args]

    def run(self, args: Sequence[str]) -> RunResult:
        """Run nvidia-smi with ``args``; see :class:`Runner`."""
        argv = self.argv(args)
        try:
            completed = _run_captured(argv, self.timeout)
        except FileNotFoundError as error:
            missing = argv[0] if self.sudo and error.filename == argv[0] else self.resolve()
            raise NvidiaSmiNotFound(missing) from error
        except OSError as error:  # not executable, not a program ("Exec format error"), …
            raise NvidiaSmiNotFound(self.resolve(), error.strerror or str(error)) from error
        except subprocess.TimeoutExpired as error:
            raise NvidiaSmiTimeout(argv, self.timeout) from error
        return _decoded(argv, completed)


def spawn(command: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start a user's command (a lease's, ``run_on_each``'s): argv as given, no shell, its own environment,
    in a session of its own, so its process id is also its process group's id.

    Its own session (``start_new_session``), so that a Ctrl-C at the terminal or a hang-up reaches smimig
    alone, which forwards it to the whole group (:class:`smimig.jobs.JobGroup`) and then cleans up after it,
    instead of both getting it at once. Not ``process_group=0`` (Python 3.11+ only): a job in a background
    process group of the terminal's session is stopped by SIGTTIN as soon as it reads the terminal (a
    debugger, a prompt), while one in its own session reads it like any other file.
    """
    if isinstance(command, str) or not command:
        raise ValueError("command must be a non-empty list of arguments, not a string")
    return subprocess.Popen(list(command), env=dict(env), start_new_session=True)


def sudo_works() -> bool:
    """Whether ``sudo -n`` runs a command without asking for a password (what ``Smi(sudo=True)`` needs)."""
    try:
        completed = subprocess.run(
            ["sudo", "-n", "true"],  # noqa: S607  # sudo from PATH, as SubprocessRunner(sudo=True) runs it
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return completed.returncode == 0


_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*|\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f:]+:[0-9A-Fa-f:.]*")
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*")


@attrs.define(repr=False)
class SshRunner(AttrsRepr):
    """Runs nvidia-smi on another machine through the system's OpenSSH client; smimig parses locally.

    ``ssh -o BatchMode=yes [-p PORT] [-l USER] [OPTIONS…] -- HOST 'nvidia-smi' 'mig' '-lgi'``: every argument is
    quoted for the remote shell, so only nvidia-smi runs there, whatever the arguments hold. BatchMode never
    prompts: a key or agent must let ssh in.

    Raises from :meth:`run`: :class:`~smimig.RemoteError` when ssh itself fails (unreachable host, refused
    key: exit code 255, ssh's own message kept); :class:`~smimig.NvidiaSmiNotFound` naming the host when
    the remote shell cannot find nvidia-smi (exit code 127); :class:`~smimig.NvidiaSmiTimeout`.
    """

    host: str
    user: str | None = None
    port: int | None = None
    options: Sequence[str] = ()
    executable: str = "nvidia-smi"
    timeout: float = attrs.field(default=DEFAULT_TIMEOUT, validator=_positive_seconds)
    sudo: bool = False

    def __attrs_post_init__(self) -> None:
        if not _HOST.fullmatch(self.host):
            raise ValueError(f"not a host name or address: {self.host!r}")
        if self.user is not None and not _USER.fullmatch(self.user):
            raise ValueError(f"not a user name: {self.user!r}")
        if self.port is not None and (
            isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 < self.port < 65536
        ):
            raise ValueError(f"not a port: {self.port!r}")
        if isinstance(self.options, str) or any("\n" in option or "\0" in option for option in self.options):
            raise ValueError("options is a list of ssh arguments, e.g. ['-o', 'ConnectTimeout=5']")

    def argv(self, args: Sequence[str]) -> list[str]:
        """The local ssh command line for nvidia-smi ``args`` on the host."""
        remote = [*(["sudo", "-n"] if self.sudo else []), self.executable, *args]
        command = " ".join(shlex.quote(part) for part in remote)
        port = ["-p", str(self.port)] if self.port is not None else []
        user = ["-l", self.user] if self.user is not None else []
        return ["ssh", "-o", "BatchMode=yes", *port, *user, *self.options, "--", self.host, command]

    def run(self, args: Sequence[str]) -> RunResult:
        """Run nvidia-smi with ``args`` on the host; see :class:`Runner`."""
        argv = self.argv(args)
        try:
            completed = _run_captured(argv, self.timeout)
        except FileNotFoundError as error:
            raise NvidiaSmiNotFound("ssh", "the OpenSSH client is not installed") from error
        except subprocess.TimeoutExpired as error:
            raise NvidiaSmiTimeout(argv, self.timeout) from error
        stderr = completed.stderr.decode("utf-8", errors="replace")
        if completed.returncode == 255:
            raise RemoteError(self.host, argv, completed.returncode, stderr)
        if completed.returncode in (126, 127):  # the remote shell: command not found / not executable
            detail = stderr.strip().splitlines()[-1] if stderr.strip() else "not found"
            raise NvidiaSmiNotFound(f"{self.host}:{self.executable}", f"on {self.host}: {detail}")
        return _decoded(argv, completed)
