"""Every error smimig raises, under one base class.

::

    SmimigError                      anything smimig raises on purpose
    ├── NvidiaSmiNotFound            the nvidia-smi binary is not there (says how to point at it)
    ├── NvidiaSmiTimeout             nvidia-smi did not answer in time
    ├── RemoteError                  ssh could not reach the host or was refused (SshRunner)
    ├── NvidiaSmiError               nvidia-smi failed: non-zero exit, or a known error text with exit 0
    │   └── MigOperationError        create/destroy/mode change failed, maybe part-way (.completed)
    │       └── PermissionDenied     "Insufficient Permissions": run as root or with Smi(sudo=True)
    ├── ParseError                   output that smimig does not recognise (never a guess)
    ├── LayoutError                  a layout that cannot be read or realised (also a ValueError)
    ├── InstanceBusy                 apply would destroy instances that processes run on
    ├── LeaseError                   no room for a lease, or a lease that could not be released
    ├── ApplyError                   apply failed part-way, or was stopped (.failure: what stopped it); says what
    │                                ran, what the rollback restored, what it left and why, the state
    ├── NodeLockTimeout              the node lock stayed taken too long; names who holds it (nothing changed)
    └── LedgerError                  the lease ledger or the lock file cannot be trusted (nothing changed)

    Terminated                       SIGTERM or SIGHUP, as smimig turns them into an exception (.signal): a
                                     BaseException, as KeyboardInterrupt is, so ``except Exception`` lets it pass

Errors keep what a user needs to act on as attributes (the command, exit code, stdout and stderr, the
offending text and line) and only format them in ``__str__``. Arguments that are wrong before any process
starts (a negative GPU index, say) raise the built-in ``ValueError``.
"""

from __future__ import annotations

import shlex
import signal
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from smimig.layout import Layout
    from smimig.leasing import Lease
    from smimig.ledger import LeaseRecord
    from smimig.locking import LockHolder
    from smimig.models import GpuProcess, OperationFailure
    from smimig.planner import Step
    from smimig.slice_map import SliceMap

__all__ = [
    "ApplyError",
    "InstanceBusy",
    "LayoutError",
    "LeaseError",
    "LedgerError",
    "MigOperationError",
    "NodeLockTimeout",
    "NvidiaSmiError",
    "NvidiaSmiNotFound",
    "NvidiaSmiTimeout",
    "ParseError",
    "PermissionDenied",
    "RemoteError",
    "SmimigError",
    "Terminated",
]

T = TypeVar("T")

_SHOWN_LINE = 300  # characters of the offending line a ParseError quotes; .line keeps it whole
_SHOWN_OUTPUT = 2000  # characters of stdout/stderr quoted in a message; the attributes keep it all


def _clip(text: str) -> str:
    text = text.rstrip("\n")
    if len(text) <= _SHOWN_OUTPUT:
        return text
    return text[:_SHOWN_OUTPUT] + f"\n... ({len(text) - _SHOWN_OUTPUT} more characters)"


class SmimigError(Exception):
    """Base class of every error smimig raises on purpose."""


class NvidiaSmiNotFound(SmimigError):
    """The ``nvidia-smi`` binary could not be started.

    Attributes:
        executable: the name or path smimig tried to run.
    """

    def __init__(self, executable: str, detail: str = "") -> None:
        super().__init__(executable, detail)
        self.executable = executable
        self.detail = detail

    def __str__(self) -> str:
        no_gpu = (
            " No GPU here? Try smimig on a simulated node: smimig --simulate A30x4 … on the command line, "
            'smimig.simulate("A30x4") in Python.'
        )
        if self.executable == "sudo":
            return (
                f"sudo could not be started ({self.detail or 'it is not installed'}): --sudo and Smi(sudo=True) run "
                "'sudo -n nvidia-smi'. Run as root instead, or install sudo."
            )
        if self.detail:
            return (
                f"nvidia-smi could not be started (tried {self.executable!r}: {self.detail}). "
                "Point SMIMIG_NVIDIA_SMI at a working binary." + no_gpu
            )
        return (
            f"nvidia-smi not found (tried {self.executable!r}). Install the NVIDIA driver, put "
            "nvidia-smi on PATH, or set SMIMIG_NVIDIA_SMI to its full path." + no_gpu
        )


class NvidiaSmiTimeout(SmimigError):
    """``nvidia-smi`` did not finish within the timeout.

    Attributes:
        args_list: the full argument list that was run.
        timeout: the limit in seconds.
    """

    def __init__(self, args_list: Sequence[str], timeout: float) -> None:
        super().__init__(list(args_list), timeout)
        self.args_list = list(args_list)
        self.timeout = timeout

    @property
    def command(self) -> str:
        """The command line, quoted as a shell would need it (for display only)."""
        return shlex.join(self.args_list)

    def __str__(self) -> str:
        return f"{self.command} did not finish within {self.timeout:g} s"


class RemoteError(SmimigError):
    """ssh could not run the command on the host: unreachable, refused key, unknown host …

    Attributes:
        host: the host.
        args_list: the local ssh command line.
        returncode: ssh's exit code (255).
        stderr: ssh's own message.
    """

    def __init__(self, host: str, args_list: Sequence[str], returncode: int, stderr: str) -> None:
        super().__init__(host, list(args_list), returncode, stderr)
        self.host = host
        self.args_list = list(args_list)
        self.returncode = returncode
        self.stderr = stderr

    def __str__(self) -> str:
        message = self.stderr.strip() or "no message"
        return f"ssh to {self.host} failed (exit code {self.returncode}): {_clip(message)}"


class NvidiaSmiError(SmimigError):
    """``nvidia-smi`` reported a failure.

    Raised for a non-zero exit code, and for a known error message printed with exit code 0.

    Attributes:
        args_list: the full argument list that was run.
        returncode: the exit code.
        stdout: everything nvidia-smi printed on standard output.
        stderr: everything nvidia-smi printed on standard error.
        reason: a short explanation of why smimig treats this as a failure.
    """

    def __init__(
        self,
        args_list: Sequence[str],
        returncode: int,
        stdout: str,
        stderr: str,
        reason: str = "",
    ) -> None:
        super().__init__(list(args_list), returncode, stdout, stderr, reason)
        self.args_list = list(args_list)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.reason = reason

    @property
    def command(self) -> str:
        """The command line, quoted as a shell would need it (for display only)."""
        return shlex.join(self.args_list)

    @property
    def message(self) -> str:
        """nvidia-smi's own words: its stderr, or its stdout when stderr is empty."""
        return (self.stderr.strip() or self.stdout.strip()).strip()

    def __str__(self) -> str:
        head = f"{self.command} failed with exit code {self.returncode}"
        if self.reason:
            head += f" ({self.reason})"
        parts = [head]
        if self.stdout.strip():
            parts.append("stdout:\n" + _clip(self.stdout))
        if self.stderr.strip():
            parts.append("stderr:\n" + _clip(self.stderr))
        return "\n".join(parts)


class ParseError(SmimigError):
    """Output that smimig does not recognise.

    A parser never guesses: a table of an unknown shape raises this error, carrying the whole text.

    Attributes:
        reason: what was expected.
        text: the whole text that was being parsed.
        line_number: 1-based number of the offending line (0 when the text as a whole is at fault).
        line: that line's text ("" when ``line_number`` is 0).
        result: when raised by a :class:`~smimig.Smi` call, the run it came from (command, exit code,
            stdout, stderr); None from a parser called directly.
    """

    def __init__(self, reason: str, text: str, line_number: int = 0) -> None:
        super().__init__(reason, text, line_number)
        self.reason = reason
        self.text = text
        self.line_number = line_number
        self.result: Any = None
        lines = text.splitlines()
        self.line = lines[line_number - 1] if 0 < line_number <= len(lines) else ""

    def __str__(self) -> str:
        if self.line_number:
            line = self.line if len(self.line) <= _SHOWN_LINE else self.line[:_SHOWN_LINE] + " ..."
            return f"{self.reason} at line {self.line_number}: {line!r}"
        return f"{self.reason}; text was:\n{_clip(self.text)}"


class MigOperationError(NvidiaSmiError, Generic[T]):
    """A mutating command (create, destroy, MIG mode) failed, possibly after doing part of its work.

    Nothing is lost: ``completed`` holds what *was* done, as models of the operation's kind (``T``:
    ``CreatedGpuInstance`` for ``create_gi``, ``DestroyedComputeInstance`` for ``destroy_ci``,
    ``MigModeChange`` for a mode change …), and ``failures`` each item that failed with nvidia-smi's reason
    (``OperationFailure``), alongside the command, exit code, stdout and stderr.
    """

    def __init__(
        self,
        args_list: Sequence[str],
        returncode: int,
        stdout: str,
        stderr: str,
        *,
        completed: Sequence[T] = (),
        failures: Sequence[OperationFailure] = (),
        reason: str = "",
    ) -> None:
        super().__init__(args_list, returncode, stdout, stderr, reason)
        self.completed: tuple[T, ...] = tuple(completed)
        self.failures: tuple[OperationFailure, ...] = tuple(failures)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.__dict__))

    def __str__(self) -> str:
        failed = "; ".join(str(failure) for failure in self.failures) or self.message or "unknown failure"
        parts = [f"{self.command} failed (exit code {self.returncode}): {failed}"]
        if self.completed:
            parts.append("completed before the failure:")
            parts.extend(f"  {item}" for item in self.completed)
        else:
            parts.append("nothing was completed")
        if self.reason:
            parts.append(self.reason)
        return "\n".join(parts)


class PermissionDenied(MigOperationError[T]):
    """nvidia-smi answered "Insufficient Permissions": MIG changes need root."""

    def __str__(self) -> str:
        return (
            super().__str__()
            + "\nMIG changes need root: run as root, or use smimig.Smi(sudo=True)"
            + " (it runs 'sudo -n nvidia-smi')."
        )


def _rebuild(cls: type[MigOperationError[Any]], state: dict[str, Any]) -> MigOperationError[Any]:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    return error


class LayoutError(SmimigError, ValueError):
    """A layout that cannot be read, or cannot be realised on the GPUs it names.

    ``reason`` says why (which profile, which slices are taken); ``suggestions`` lists the closest layouts
    that do fit, when there are any, and ``suggestion_maps`` draws each on its GPU
    (:class:`~smimig.slice_map.SliceMap`: ``print()`` one, or show it in Jupyter, where the error itself shows
    its reason and every suggestion drawn).
    """

    def __init__(self, reason: str, suggestions: Sequence[str] = (), *, maps: Sequence[SliceMap] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.suggestions = tuple(suggestions)
        self._maps = tuple(maps)  # drawings of the suggestions, not data: --json leaves them out

    @property
    def suggestion_maps(self) -> tuple[SliceMap, ...]:
        """Each suggestion placed on the GPU as ``plan`` would place it, in the order of ``suggestions``."""
        return self._maps

    def __str__(self) -> str:
        if not self.suggestions:
            return self.reason
        return self.reason + "\nlayouts that fit instead: " + "; ".join(self.suggestions)

    def _repr_html_(self) -> str:
        import html  # noqa: PLC0415  # only in a notebook

        parts = [f"<p><strong>LayoutError</strong>: {html.escape(self.reason)}</p>"]
        if self.suggestions:
            parts.append("<p>layouts that fit instead:</p>")
        drawn = dict(enumerate(self._maps))
        for index, suggestion in enumerate(self.suggestions):
            drawing = drawn.get(index)
            parts.append(f"<div>{drawing.svg()}</div>" if drawing is not None else f"<p>{html.escape(suggestion)}</p>")
        return "".join(parts)


class InstanceBusy(SmimigError):
    """``apply`` would destroy instances (or change the MIG mode of GPUs) that processes are running on, or
    that someone's live lease holds.

    ``processes`` and ``leases`` list them; ``apply(..., force=True)`` (``--force``) goes ahead anyway.
    """

    def __init__(self, processes: Sequence[GpuProcess], leases: Sequence[LeaseRecord] = ()) -> None:
        super().__init__(processes, leases)
        self.processes = tuple(processes)
        self.leases = tuple(leases)

    def __str__(self) -> str:
        parts = [
            f"PID {p.pid} ({p.name}) on GPU {p.gpu}" + (f" GI {p.gi} CI {p.ci}" if p.gi is not None else "")
            for p in self.processes
        ]
        parts.extend(str(record) for record in self.leases)
        return (
            f"refusing to destroy instances that processes run on or leases hold: {'; '.join(parts)}. "
            "Stop them, or use force=True (--force on the command line)."
        )


class ApplyError(SmimigError):
    """``apply`` failed part-way, or was stopped part-way. Nothing is left unexplained:

    Attributes:
        failure: what stopped it: the error of the step that failed (nvidia-smi's words, what that step did
            before failing), a timeout, output smimig could not read, or the interruption itself
            (``KeyboardInterrupt`` for Ctrl-C, :class:`Terminated` for SIGTERM).
        ran: the steps that ran before it.
        restored: the steps the rollback ran to undo them, in the order they ran (empty without rollback).
        rollback_failure: the error that stopped the rollback, if it could not finish.
        state: the node's state now, as a Layout (None when it could not be read).
        left: what the rollback left as it is on purpose, and why (an instance it created that someone else
            has since changed or put a compute instance in: the rollback destroys only what it created).
    """

    def __init__(
        self,
        failure: BaseException,
        ran: Sequence[Step],
        restored: Sequence[Step],
        rollback_failure: SmimigError | None,
        state: Layout | None,
        *,
        rolled_back: bool,
        left: Sequence[str] = (),
    ) -> None:
        super().__init__(failure, tuple(ran), tuple(restored), rollback_failure, state)
        self.failure = failure
        self.ran = tuple(ran)
        self.restored = tuple(restored)
        self.rollback_failure = rollback_failure
        self.state = state
        self.rolled_back = rolled_back
        self.left = tuple(left)

    @property
    def interrupted(self) -> bool:
        """Whether an interruption (Ctrl-C, SIGTERM, SIGHUP) stopped apply, rather than a failure."""
        return isinstance(self.failure, (KeyboardInterrupt, Terminated))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.__dict__))

    def __str__(self) -> str:
        what = _interruption(self.failure) if self.interrupted else f"failed: {self.failure}"
        lines = [f"apply {what}".rstrip()]
        lines.append(f"steps that ran before {'it' if self.interrupted else 'the failure'} ({len(self.ran)}):")
        lines.extend(f"  {step}" for step in self.ran)
        if not self.rolled_back:
            lines.append("no rollback was asked for (rollback=False)")
        elif self.rollback_failure is not None:
            lines.append(f"the rollback ran {len(self.restored)} step(s), then failed: {self.rollback_failure}")
        else:
            lines.append(f"rolled back with {len(self.restored)} step(s) to the starting layout:")
            lines.extend(f"  {step}" for step in self.restored)
        lines.extend(f"left as it is: {reason}" for reason in self.left)
        if self.state is not None:
            lines.append("state now:")
            lines.extend(f"  {line}" for line in str(self.state).splitlines())
        return "\n".join(lines)


def _interruption(failure: BaseException) -> str:
    if isinstance(failure, Terminated):
        return f"stopped by {failure.name}"
    return "interrupted (Ctrl-C)"


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived while smimig was changing something, turned into an exception so that what
    was started is finished or undone: ``apply`` raises it for SIGTERM (then rolls back and raises
    :class:`ApplyError` carrying it); the ``smimig`` command raises it for both.

    Not a :class:`SmimigError`: like ``KeyboardInterrupt`` it derives from ``BaseException``, so
    ``except Exception`` does not swallow a request to stop.

    Attributes:
        signal: the signal's number (``signal.SIGTERM``, ``signal.SIGHUP``).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(int(signum))
        self.signal = int(signum)

    @property
    def name(self) -> str:
        """The signal's name, e.g. ``"SIGTERM"``."""
        try:
            return signal.Signals(self.signal).name
        except ValueError:
            return f"signal {self.signal}"

    def __str__(self) -> str:
        return f"stopped by {self.name}"


class LeaseError(SmimigError):
    """A lease found no room, or could not be released.

    Attributes:
        reason: what went wrong.
        profile: the profile asked for.
        free: what each GPU had free when smimig looked ("GPU 0: 1g.10gb 0/7 free").
        left: the lease that is still there when releasing it failed (None otherwise).
    """

    def __init__(self, reason: str, *, profile: str, free: Sequence[str], left: Lease | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.profile = profile
        self.free = tuple(free)
        self.left = left

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.__dict__))

    def __str__(self) -> str:
        text = self.reason
        if self.free:
            text += " (" + "; ".join(self.free) + ")"
        return text


class NodeLockTimeout(SmimigError):
    """The node lock (:mod:`smimig.locking`) was still held by someone else when the timeout ran out;
    nothing was changed.

    Attributes:
        path: the lock file.
        timeout: how long smimig waited, in seconds.
        holder: who held it, as the lock file said (None when it did not say).
    """

    def __init__(self, path: str, timeout: float, holder: LockHolder | None) -> None:
        super().__init__(path, timeout, holder)
        self.path = path
        self.timeout = timeout
        self.holder = holder

    def __str__(self) -> str:
        who = f"by {self.holder}" if self.holder is not None else "by a process that did not say who it is"
        return f"the node lock {self.path} was still held after {self.timeout:g} s, {who}; nothing was changed"


class LedgerError(SmimigError):
    """The lease ledger's directory or the node lock file cannot be trusted (or used), so smimig refuses to
    let it decide anything: nothing was changed.

    Attributes:
        path: the file or directory at fault.
        reason: why (who owns it, which permission is wrong) and what to do.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"
