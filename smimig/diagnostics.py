"""``smimig doctor``: why is this GPU not doing what I asked?

A pre-flight report: is nvidia-smi there and which driver; per GPU its name, whether it can do MIG, its mode
now and pending and, when they differ, why (processes on the GPU, or a reset needed); whether changes will
be allowed (root, or ``sudo -n``); the lease ledger: each orphaned lease (its holder no longer runs: ``smimig
reclaim`` destroys it), each file there it does not trust, each instance two entries claim; and a self-check
that runs every listing smimig reads and reports any output it cannot parse, saving the raw text to a file
for a bug report (driver 560 changed nvidia-smi's text once and broke other tools silently).

The self-check's listings are the registry's (:mod:`smimig.commands`), run through the ``Smi`` being checked:
each with :meth:`Smi.read_raw <smimig.client.Smi.read_raw>`, all at once with ``Smi.gather``, and judged by
:meth:`Smi.parse <smimig.client.Smi.parse>`, exactly as the listing methods judge them.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import attrs

from smimig import commands
from smimig._repr import AttrsRepr
from smimig.client import Smi, default_client
from smimig.errors import NvidiaSmiError, ParseError, SmimigError
from smimig.ledger import Ledger
from smimig.listing import Listing
from smimig.locking import lock_path_for
from smimig.models import GpuProcess
from smimig.runner import RunResult, SubprocessRunner, sudo_works

__all__ = ["DoctorReport", "Finding", "FindingLevel", "GpuReport", "ListingCheck", "doctor"]

# "KMD Version:" is driver 610's banner word for the driver version.
_DRIVER = re.compile(r"DRIVER version\s*:\s*(\S+)|(?:Driver|KMD) Version:\s*(\S+)")


FindingLevel = Literal["ok", "attention"]
"""How a finding reads: fine, or something to act on (``attention`` makes ``smimig doctor`` exit 1)."""


@attrs.frozen(repr=False)
class Finding(AttrsRepr):
    """One line of the report: ``attention`` findings make the doctor's exit code 1."""

    level: FindingLevel = attrs.field(validator=attrs.validators.in_(get_args(FindingLevel)))
    message: str

    def __str__(self) -> str:
        return f"{'ok' if self.level == 'ok' else '!!'}  {self.message}"


@attrs.frozen(repr=False)
class GpuReport(AttrsRepr):
    index: int
    name: str
    mig_capable: bool
    mig_current: bool
    mig_pending: bool
    why_pending: str | None
    processes: tuple[GpuProcess, ...]


@attrs.frozen(repr=False)
class ListingCheck(AttrsRepr):
    """One listing of the self-check: parsed, or not (with where its raw output was saved)."""

    name: str
    command: str
    ok: bool
    problem: str | None = None
    saved_to: str | None = None


@attrs.frozen(repr=False)
class DoctorReport(AttrsRepr):
    nvidia_smi: str | None
    driver: str | None
    gpus: tuple[GpuReport, ...]
    can_change: bool
    change_how: str
    listings: tuple[ListingCheck, ...]
    findings: tuple[Finding, ...]

    @property
    def healthy(self) -> bool:
        return all(finding.level == "ok" for finding in self.findings)

    def __str__(self) -> str:
        return "\n".join(str(finding) for finding in self.findings)


def _attempt(smi: Smi, command: commands.Command[Any]) -> RunResult | SmimigError:
    try:
        return smi.read_raw(command)
    except SmimigError as error:  # not there, timed out, unreachable: reported, the others still run
        return error


def _run_all(smi: Smi, listed: Sequence[commands.Command[Any]]) -> list[RunResult | SmimigError]:
    """Each listing's answer, in order; all issued at once (independent reads), each distinct command line
    once (plain nvidia-smi serves both the MIG devices and the processes table)."""
    distinct: dict[tuple[str, ...], commands.Command[Any]] = {}
    for command in listed:
        distinct.setdefault(tuple(command.argv()), command)
    answers = smi.gather(*(functools.partial(_attempt, smi, command) for command in distinct.values()))
    by_argv = dict(zip(distinct, answers))
    return [by_argv[tuple(command.argv())] for command in listed]


def _self_check(smi: Smi, save_dir: Path | None) -> list[ListingCheck]:
    listed = [command for command in commands.COMMANDS if command.self_check]
    checks = []
    for command, outcome in zip(listed, _run_all(smi, listed)):
        name, line = command.name, " ".join(["nvidia-smi", *command.argv()])
        if isinstance(outcome, SmimigError):
            checks.append(ListingCheck(name, line, ok=False, problem=str(outcome)))
            continue
        result = outcome
        try:
            smi.parse(command, result)
        except NvidiaSmiError:
            text = result.stdout + result.stderr
            checks.append(
                ListingCheck(name, line, ok=False, problem=f"exit code {result.returncode}: {text.strip()[:200]}")
            )
            continue
        except ParseError as error:
            if save_dir is None:
                save_dir = Path(tempfile.mkdtemp(prefix=f"smimig-doctor-{time.strftime('%Y%m%d-%H%M%S')}-"))
            save_dir.mkdir(parents=True, exist_ok=True)
            path = save_dir / (re.sub(r"[^a-z0-9]+", "-", name.lower()) + ".txt")
            path.write_text(
                f"$ {line}\n# exit code {result.returncode}\n{result.stdout}{result.stderr}", encoding="utf-8"
            )
            checks.append(ListingCheck(name, line, ok=False, problem=str(error), saved_to=str(path)))
            continue
        checks.append(ListingCheck(name, line, ok=True))
    return checks


def _driver(smi: Smi) -> str | None:
    for args in (["--version"], []):
        try:
            result = smi.run(args)
        except NvidiaSmiError:
            continue  # an older nvidia-smi without --version: its table's banner names the driver
        except SmimigError:
            return None
        match = _DRIVER.search(result.stdout)
        if match:
            return match.group(1) or match.group(2)
    return None


def _change_rights(smi: Smi) -> tuple[bool, str]:
    runner = smi.runner
    if not isinstance(runner, SubprocessRunner):
        return True, f"not a local nvidia-smi ({runner!r}): its own rules apply"
    if runner.sudo:
        return (True, "through 'sudo -n'") if sudo_works() else (False, "'sudo -n' asks for a password")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return True, "running as root"
    if sudo_works():
        return True, "not root, but 'sudo -n' works: use --sudo or smimig.Smi(sudo=True)"
    return False, "not root and 'sudo -n' does not work: changes will fail with Insufficient Permissions"


def _lease_findings(smi: Smi) -> list[Finding]:
    """Each orphaned lease, each ledger file not trusted, each instance claimed twice (attention); the live
    leases (ok). Nothing when the ledger is empty."""
    try:
        view = Ledger(lock_path_for(smi)).read()
    except SmimigError as error:  # a ledger others could forge, or cannot be read
        return [Finding("attention", f"lease ledger: {error}")]
    findings = [
        Finding("attention", f"orphaned lease: {record}; smimig reclaim destroys it")
        if not record.settled
        else Finding(
            "attention",
            f"settled lease entry: {record}; its instance is no longer on the node: "
            + ("smimig reclaim removes it" if record.uid == os.geteuid() else "root's smimig reclaim removes it"),
        )
        for record in view.records
        if not record.alive
    ]
    findings.extend(Finding("attention", f"lease ledger: ignored {problem}") for problem in view.problems)
    for (gpu, gi), entries in sorted(view.doubly_claimed().items()):
        findings.append(
            Finding(
                "attention",
                f"GPU {gpu} GI {gi} is claimed by {len(entries)} lease entries ({', '.join(entries)}): "
                "reclaim leaves it alone; remove the false ones",
            )
        )
    live = [record for record in view.records if record.alive]
    if live:
        held = ", ".join(f"{record.user}: {record.where}" for record in live)
        findings.append(Finding("ok", f"leases: {len(live)} live ({held})"))
    return findings


def _directory(save_dir: str | os.PathLike[str] | None) -> Path | None:
    if save_dir is None:
        return None
    if Path(save_dir).exists() and not Path(save_dir).is_dir():
        raise ValueError(f"save_dir {os.fspath(save_dir)!r} is a file: name a directory (it is made if missing)")
    return Path(save_dir)


def doctor(smi: Smi | None = None, *, save_dir: str | os.PathLike[str] | None = None) -> DoctorReport:
    """Check the node and say, one line per finding, what needs attention (see the module docstring)."""
    directory = _directory(save_dir)  # checked before anything runs
    smi = smi or default_client()
    findings: list[Finding] = []
    where = smi.runner.resolve() if isinstance(smi.runner, SubprocessRunner) else repr(smi.runner)
    try:
        gpus = smi.list_gpus()
    except SmimigError as error:
        findings.append(Finding("attention", f"nvidia-smi: {error}"))
        return DoctorReport(None, None, (), False, "unknown", (), tuple(findings))
    driver = _driver(smi)
    findings.append(Finding("ok", f"nvidia-smi: {where}, driver {driver or 'unknown'}"))
    try:
        modes = {mode.gpu: mode for mode in smi.mig_mode()}
    except SmimigError as error:
        modes = {}
        findings.append(Finding("attention", f"MIG mode query failed: {error}"))
    try:
        processes = smi.list_processes()
    except SmimigError as error:
        processes = Listing[GpuProcess]()
        findings.append(Finding("attention", f"processes table could not be read: {error}"))
    reports = []
    for gpu in gpus:
        mode = modes.get(gpu.index)
        capable = mode is not None and mode.supported
        own = tuple(process for process in processes if process.gpu == gpu.index)
        why = None
        if mode is not None and mode.is_pending:
            if own:
                names = ", ".join(f"PID {p.pid} ({p.name})" for p in own)
                why = f"processes use the GPU: {names}; stop them, then reset the GPU (nvidia-smi -r -i {gpu.index})"
            else:
                why = f"the GPU needs a reset: nvidia-smi -r -i {gpu.index} (or a reboot)"
        reports.append(
            GpuReport(gpu.index, gpu.name, capable, bool(mode and mode.current), bool(mode and mode.pending), why, own)
        )
        state = "no MIG" if not capable else f"MIG {'on' if mode and mode.current else 'off'}"
        if why:
            findings.append(
                Finding(
                    "attention",
                    f"GPU {gpu.index} {gpu.name}: {state}, pending {'on' if mode and mode.pending else 'off'}: {why}",
                )
            )
        else:
            findings.append(Finding("ok", f"GPU {gpu.index} {gpu.name}: {state}"))
    findings.extend(_lease_findings(smi))
    can_change, how = _change_rights(smi)
    findings.append(Finding("ok" if can_change else "attention", f"changes: {how}"))
    checks = _self_check(smi, directory)
    for check in checks:
        if check.ok:
            continue
        saved = f"; raw output saved to {check.saved_to} (attach it to a bug report)" if check.saved_to else ""
        findings.append(
            Finding("attention", f"listing '{check.name}' ({check.command}) not understood: {check.problem}{saved}")
        )
    if all(check.ok for check in checks):
        findings.append(Finding("ok", f"self-check: all {len(checks)} listings parse"))
    return DoctorReport(where, driver, tuple(reports), can_change, how, tuple(checks), tuple(findings))
