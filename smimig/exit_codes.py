"""The ``smimig`` command's exit codes, from one table, and the one function that turns an error into its
code and the lines it prints on stderr. Every command of :mod:`smimig.cli` goes through :func:`explain`.

====  ==========================================================================================================
code  meaning
====  ==========================================================================================================
0     ok
1     an unexpected error: a bug. One line names the error and the file holding its traceback (never a
      traceback on the terminal). ``doctor`` also exits 1 when its report needs attention: that is its answer,
      not a bug.
2     refused before anything ran: a usage error, a bad argument (``ValueError``), a file that cannot be read,
      an impossible layout (``LayoutError``), instances processes run on without ``--force``
      (``InstanceBusy``), no room for a lease (``LeaseError``), a lease ledger or lock file smimig cannot
      trust (``LedgerError``)
3     nvidia-smi (or ssh) failed and nothing was changed: ``NvidiaSmiError``, ``MigOperationError`` that
      completed nothing, ``NvidiaSmiNotFound``, ``NvidiaSmiTimeout``, ``RemoteError``; also the node lock
      stayed taken (``NodeLockTimeout``: it names the holder)
4     nvidia-smi printed something smimig cannot read (``ParseError``)
5     a change failed part-way; what ran and what was restored are printed: ``ApplyError``,
      ``MigOperationError`` with ``completed``, a ``LeaseError`` whose device could not be released (``left``)
129   hung up (SIGHUP): 128 + SIGHUP; what smimig had started was finished or undone first
130   interrupted (Ctrl-C): 128 + SIGINT, as a shell reports it; what smimig had started was finished or undone
      first (``apply`` rolled back, a lease released), and one line says so: never a traceback
143   stopped by SIGTERM: 128 + SIGTERM; the same cleanup first
====  ==========================================================================================================

``smimig lease … -- CMD`` and ``smimig run --each -- CMD`` exit with the job's own code (``run --each``: the
first non-zero one), 128+N when signal N killed it; smimig's own failures there still print a ``smimig:`` line.
A SIGINT, SIGTERM or SIGHUP that smimig itself receives there is forwarded to the job's process group; smimig
waits for the job, releases what it holds, and exits 128+N.

Interruptions are exceptions: Python raises ``KeyboardInterrupt`` for Ctrl-C, and the ``smimig`` command
raises :class:`~smimig.Terminated` for SIGTERM and SIGHUP (``apply`` does for SIGTERM itself), so every
``finally`` and rollback runs; they map to 130, 143 and 129 here, and an :class:`~smimig.ApplyError` that an
interruption caused maps to the interruption's code.

Where "nothing ran" and "part-way" are told apart: a :class:`~smimig.MigOperationError` says what it did in
``completed``; :func:`smimig.apply` raises :class:`~smimig.LayoutError` and :class:`~smimig.InstanceBusy`
only before its first step, and wraps anything that fails after one in :class:`~smimig.ApplyError` (``ran``,
``restored``); a :class:`~smimig.LeaseError` that leaves a device behind carries it in ``left``.
"""

from __future__ import annotations

import enum
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any, Callable

import attrs

from smimig import __version__
from smimig._repr import AttrsRepr
from smimig.errors import (
    ApplyError,
    InstanceBusy,
    LayoutError,
    LeaseError,
    LedgerError,
    MigOperationError,
    NodeLockTimeout,
    NvidiaSmiError,
    NvidiaSmiNotFound,
    NvidiaSmiTimeout,
    ParseError,
    PermissionDenied,
    RemoteError,
    Terminated,
)

__all__ = ["RULES", "ExitCode", "Rule", "exit_code", "explain", "job_exit_code"]


class ExitCode(enum.IntEnum):
    """What the ``smimig`` command's exit status means (see the module docstring for the full table)."""

    OK = 0
    UNEXPECTED = 1
    REFUSED = 2
    NVIDIA_SMI = 3
    PARSE = 4
    PARTIAL = 5
    HANGUP = 128 + signal.SIGHUP
    INTERRUPTED = 128 + signal.SIGINT
    TERMINATED = 128 + signal.SIGTERM

    @property
    def meaning(self) -> str:
        """One line for ``--help`` and the README."""
        return _MEANINGS[self]


_MEANINGS = {
    ExitCode.OK: "ok",
    ExitCode.UNEXPECTED: "an unexpected error, a bug (one line names the traceback's file); doctor: needs attention",
    ExitCode.REFUSED: "refused before anything ran: usage, bad argument, impossible layout, "
    "in use without --force, no room",
    ExitCode.NVIDIA_SMI: "nvidia-smi (or ssh) failed; nothing was changed",
    ExitCode.PARSE: "nvidia-smi printed something smimig cannot read",
    ExitCode.PARTIAL: "a change failed part-way; what ran and what was restored are listed",
    ExitCode.HANGUP: "hung up (SIGHUP); what had started was finished or undone first",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C); what had started was finished or undone first",
    ExitCode.TERMINATED: "stopped by SIGTERM; what had started was finished or undone first",
}


def job_exit_code(returncode: int) -> int:
    """A job's exit status as a shell reports it: its own code, or 128+N when signal N killed it.

    >>> job_exit_code(3), job_exit_code(-15)
    (3, 143)
    """
    return 128 - returncode if returncode < 0 else returncode


# -- what each error prints -------------------------------------------------------------------------


def _indented(text: str, first: str, rest: str = "    ") -> list[str]:
    lines = text.splitlines() or [""]
    return [first + lines[0], *(rest + line for line in lines[1:])]


def _plain_lines(error: BaseException) -> list[str]:
    return _indented(str(error), "smimig: ", "  ")


def _operation_lines(error: MigOperationError[Any]) -> list[str]:
    done = len(error.completed)
    sentence = (
        f"{error.command} failed part-way: {done} change(s) were made before it"
        if done
        else f"{error.command} failed; nothing was changed"
    )
    lines = [f"smimig: {sentence}."]
    lines.extend(f"  done: {item}" for item in error.completed)
    lines.extend(f"  nvidia-smi: {failure}" for failure in error.failures)
    if not error.failures and error.message:
        lines.append(f"  nvidia-smi: {error.message}")
    lines.extend(f"  {part.strip()}" for part in error.reason.split("; ") if part.strip())  # what to do
    if isinstance(error, PermissionDenied):
        lines.append("  MIG changes need root: run as root or add --sudo.")
    return lines


def _nvidia_smi_lines(error: NvidiaSmiError) -> list[str]:
    lines = [f"smimig: {error.command} failed with exit code {error.returncode}."]
    lines.extend(f"  nvidia-smi: {line}" for line in error.message.splitlines())
    return lines


def _parse_lines(error: ParseError) -> list[str]:
    return [
        *_indented(f"nvidia-smi printed something smimig does not understand: {error}", "smimig: ", "  "),
        "  Please report it with the output of the same nvidia-smi command.",
    ]


def _busy_lines(error: InstanceBusy) -> list[str]:
    lines = ["smimig: refusing to destroy instances that processes run on or leases hold; nothing was changed:"]
    for process in error.processes:
        where = f" GI {process.gi} CI {process.ci}" if process.gi is not None else ""
        lines.append(f"  PID {process.pid} ({process.name}) on GPU {process.gpu}{where}")
    lines.extend(f"  {record}" for record in error.leases)
    lines.append("  Stop them (or let the leases end), or add --force to go ahead anyway.")
    return lines


def _apply_changed(error: ApplyError) -> bool:
    return bool(error.ran or error.restored or getattr(error.failure, "completed", ()))


def _failure_lines(failure: BaseException) -> list[str]:
    if not isinstance(failure, MigOperationError):
        return _indented(str(failure), "  failed: ")
    lines = [f"  failed: {str(failure).splitlines()[0]}"]
    lines.extend(f"    done: {item}" for item in failure.completed)
    if isinstance(failure, PermissionDenied):
        lines.append("    MIG changes need root: run as root or add --sudo.")
    return lines


def _stopped(failure: BaseException) -> str:
    if isinstance(failure, KeyboardInterrupt):
        return "interrupted"
    if isinstance(failure, Terminated):
        return str(failure)
    return "failed"


def _apply_lines(error: ApplyError) -> list[str]:
    what = _stopped(error.failure)
    changed = _apply_changed(error)
    restored = error.rolled_back and error.rollback_failure is None and not error.left
    if not changed:
        head = f"apply {what}; nothing was changed"
    elif not error.rolled_back:
        head = f"apply {what} part-way; no rollback was asked for"
    elif error.rollback_failure is not None:
        head = (
            f"apply {what} part-way, and the rollback to the starting layout failed"
            if error.interrupted
            else "apply failed part-way, and so did the rollback to the starting layout"
        )
    elif error.left:
        head = f"apply {what} part-way; the rollback undid its own steps, and left some changes (below)"
    else:
        head = f"apply {what} part-way; the rollback restored the starting layout"
    if error.interrupted and (not changed or restored):
        return [f"smimig: {head}."]  # one line: back where it started, nothing to act on
    lines = [f"smimig: {head}."]
    if not error.interrupted:
        lines.extend(_failure_lines(error.failure))
    lines.extend(f"  ran: {step}" for step in error.ran)
    lines.extend(f"  restored: {step}" for step in error.restored)
    lines.extend(f"  left: {reason}" for reason in error.left)
    if error.rollback_failure is not None:
        lines.extend(_indented(str(error.rollback_failure), "  rollback failed: "))
    if error.state is not None and changed:
        lines.append("  state now:")
        lines.extend(f"    {line}" for line in str(error.state).splitlines())
    return lines


def _lease_lines(error: LeaseError) -> list[str]:
    lines = _plain_lines(error)
    if error.left is not None:
        held = error.left
        lines.append(
            f"  To remove it once it is free: nvidia-smi mig -i {held.gpu} -gi {held.gi} -ci {held.ci} -dci;"
            f" nvidia-smi mig -i {held.gpu} -gi {held.gi} -dgi"
        )
    return lines


def _interrupted_lines(error: BaseException) -> list[str]:
    what = _stopped(error)
    if isinstance(error.__cause__, ApplyError):  # it came while apply rolled back, and waited for the end
        return [f"smimig: {what} while apply rolled back; the rollback finished first:", *_apply_lines(error.__cause__)]
    return [f"smimig: {what}."]


def _signal_is(number: int) -> Callable[[Any], bool]:
    def when(error: BaseException) -> bool:
        failure = error.failure if isinstance(error, ApplyError) else error
        return isinstance(failure, Terminated) and failure.signal == number

    return when


def _ctrl_c(error: ApplyError) -> bool:
    return isinstance(error.failure, KeyboardInterrupt)


# -- the table --------------------------------------------------------------------------------------


def _always(error: object) -> bool:
    return True


@attrs.frozen(repr=False)
class Rule(AttrsRepr):
    """One row of the table: an error of type ``kind`` for which ``when`` holds exits with ``code``, and
    ``lines`` says it on stderr."""

    kind: type[BaseException]
    code: ExitCode
    when: Callable[[Any], bool] = _always
    lines: Callable[[Any], list[str]] = _plain_lines


RULES: tuple[Rule, ...] = (
    # an interruption stopped apply, which rolled back: the interruption's code
    Rule(ApplyError, ExitCode.INTERRUPTED, _ctrl_c, _apply_lines),
    Rule(ApplyError, ExitCode.TERMINATED, _signal_is(signal.SIGTERM), _apply_lines),
    Rule(ApplyError, ExitCode.HANGUP, _signal_is(signal.SIGHUP), _apply_lines),
    # a change failed part-way, or failed with nothing changed: the error itself says which
    Rule(ApplyError, ExitCode.PARTIAL, _apply_changed, _apply_lines),
    Rule(ApplyError, ExitCode.NVIDIA_SMI, lines=_apply_lines),
    Rule(MigOperationError, ExitCode.PARTIAL, lambda error: bool(error.completed), _operation_lines),
    Rule(MigOperationError, ExitCode.NVIDIA_SMI, lines=_operation_lines),
    Rule(LeaseError, ExitCode.PARTIAL, lambda error: error.left is not None, _lease_lines),
    # the lease's GI was made, its CI or device was not, and the GI was destroyed again
    Rule(LeaseError, ExitCode.NVIDIA_SMI, lambda error: error.__cause__ is not None),
    Rule(LeaseError, ExitCode.REFUSED),  # no room
    # nvidia-smi or ssh failed; nothing was changed
    Rule(NvidiaSmiError, ExitCode.NVIDIA_SMI, lines=_nvidia_smi_lines),
    Rule(NvidiaSmiNotFound, ExitCode.NVIDIA_SMI),
    Rule(NvidiaSmiTimeout, ExitCode.NVIDIA_SMI),
    Rule(RemoteError, ExitCode.NVIDIA_SMI),
    Rule(NodeLockTimeout, ExitCode.NVIDIA_SMI),  # someone else's change held the node: nothing was changed
    Rule(ParseError, ExitCode.PARSE, lines=_parse_lines),
    # refused before anything ran (apply raises these two only before its first step)
    Rule(InstanceBusy, ExitCode.REFUSED, lines=_busy_lines),
    Rule(LayoutError, ExitCode.REFUSED),
    Rule(LedgerError, ExitCode.REFUSED),  # a lock file or ledger others could forge: refused, nothing ran
    Rule(ValueError, ExitCode.REFUSED),  # arguments checked before any process starts
    Rule(OSError, ExitCode.REFUSED),  # a layout file that is not there, a job that cannot start, the lease lock
    # interrupted: Ctrl-C, and SIGTERM and SIGHUP as the smimig command raises them
    Rule(KeyboardInterrupt, ExitCode.INTERRUPTED, lines=_interrupted_lines),
    Rule(Terminated, ExitCode.HANGUP, _signal_is(signal.SIGHUP), _interrupted_lines),
    Rule(Terminated, ExitCode.TERMINATED, lines=_interrupted_lines),
)
"""Tried in order; the first row whose ``kind`` and ``when`` match wins. No row: :attr:`ExitCode.UNEXPECTED`."""


def _rule(error: BaseException) -> Rule | None:
    return next((rule for rule in RULES if isinstance(error, rule.kind) and rule.when(error)), None)


def exit_code(error: BaseException) -> ExitCode:
    """The exit code for ``error``, from :data:`RULES` (:attr:`ExitCode.UNEXPECTED` when no row matches).

    >>> exit_code(LayoutError("GPU 0: the layout needs 5 memory slices; the GPU has 4"))
    <ExitCode.REFUSED: 2>
    """
    rule = _rule(error)
    return ExitCode.UNEXPECTED if rule is None else rule.code


def explain(error: BaseException, argv: Sequence[str] | None = None) -> tuple[ExitCode, list[str]]:
    """The exit code for ``error`` and the lines to print on stderr (without newlines).

    An error no row of :data:`RULES` expects is a bug: its traceback goes to a file in the temporary
    directory (with ``argv`` and the versions, for a bug report), and the one line printed names that file.
    """
    rule = _rule(error)
    if rule is not None:
        return rule.code, rule.lines(error)
    summary = f"{type(error).__name__}: {error}".splitlines()[0] if str(error) else type(error).__name__
    try:
        path = _save_traceback(error, argv)
    except OSError as failure:
        where = f"its traceback could not be saved: {failure}"
    else:
        where = f"please report it with the traceback saved in {path}"
    return ExitCode.UNEXPECTED, [f"smimig: unexpected error (a bug), {summary}; {where}"]


def _save_traceback(error: BaseException, argv: Sequence[str] | None) -> str:
    import platform  # noqa: PLC0415  # a bug report's needs, not every command's start-up
    import tempfile  # noqa: PLC0415
    import time  # noqa: PLC0415
    import traceback  # noqa: PLC0415

    stamp = time.strftime("%Y%m%d-%H%M%S")
    handle, path = tempfile.mkstemp(prefix=f"smimig-crash-{stamp}-{os.getpid()}-", suffix=".txt")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(f"smimig {__version__}, Python {platform.python_version()}, {platform.platform()}\n")
        stream.write(f"argv: {list(sys.argv[1:] if argv is None else argv)!r}\n\n")
        stream.writelines(traceback.format_exception(type(error), error, error.__traceback__))
    return path
