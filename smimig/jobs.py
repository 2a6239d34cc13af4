"""Run work on MIG devices: ``CUDA_VISIBLE_DEVICES`` values, environments, one process per device.

>>> for device in smimig.devices(0):
...     print(smimig.cuda_visible_devices(device))
MIG-89b757f7-3c4c-5b1c-9476-a11b14aa9308
MIG-bdf043cc-8668-599c-95b0-5b640d416440
MIG-6df26cf8-a984-58d3-978e-acb0c808d513
MIG-6f79e1f8-f1ed-5121-976a-4ff3f0df8634
>>> smimig.run_on_each(["python", "train.py"])   # the seed's last step, one process per MIG device
[DeviceRun(device=MigDeviceInfo(gpu=0, gi=1, ci=0, index=0, uuid='MIG-89b757f7-...', ...), pid=..., returncode=0), ...]
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from types import FrameType, TracebackType
from typing import Union

import attrs

from smimig import interrupts
from smimig._repr import AttrsRepr
from smimig.client import Ids, Smi, default_client
from smimig.node_status import MigDeviceInfo
from smimig.runner import spawn

__all__ = ["FORWARDED_SIGNALS", "DeviceRun", "JobGroup", "cuda_visible_devices", "device_env", "run_on_each"]

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""What a :class:`JobGroup` passes on to its jobs: Ctrl-C, a polite kill, a hang-up."""

DeviceLike = Union[MigDeviceInfo, str]


def _uuid(device: DeviceLike) -> str:
    uuid = device.uuid if isinstance(device, MigDeviceInfo) else device
    if not uuid.startswith(("MIG-", "GPU-")) or any(character in uuid for character in ", \n"):
        raise ValueError(f"not a GPU or MIG device UUID: {uuid!r}")
    return uuid


def cuda_visible_devices(devices: DeviceLike | Sequence[DeviceLike]) -> str:
    """The ``CUDA_VISIBLE_DEVICES`` value for one device or several (comma-separated UUIDs)."""
    if isinstance(devices, (MigDeviceInfo, str)):
        return _uuid(devices)
    return ",".join(_uuid(device) for device in devices)


def device_env(device: DeviceLike | Sequence[DeviceLike], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with ``CUDA_VISIBLE_DEVICES`` set to ``device``."""
    env = dict(os.environ if base is None else base)
    env["CUDA_VISIBLE_DEVICES"] = cuda_visible_devices(device)
    return env


@attrs.frozen(repr=False)
class DeviceRun(AttrsRepr):
    """One process started on one MIG device, and its exit code once it has finished (None before)."""

    device: MigDeviceInfo
    pid: int
    returncode: int | None


class JobGroup:
    """Jobs started together, each in a session (and process group) of its own, with SIGINT, SIGTERM and
    SIGHUP passed on to them while they run: what ``smimig lease … -- CMD`` and ``smimig run --each`` do.

    While the group is open (a ``with`` block in the main thread; elsewhere no handler is installed):

    * before any job has started, a signal goes to the handler it had before (Ctrl-C raises
      ``KeyboardInterrupt``); one left to its default action raises :class:`~smimig.errors.Terminated`
      instead of ending the process, so that the ``with`` blocks around it clean up;
    * while jobs run, it is sent to the process group of each job still running (a job's own children get it
      too), and recorded in :attr:`received`; smimig carries on waiting for them;
    * once they have all ended (a lease being released, say), it is only recorded: cleaning up is not cut
      short.

    The caller decides what a recorded signal means once the block is done (the ``smimig`` command exits
    128+N). A signal that was ignored when the group opened (``nohup`` ignores SIGHUP) is neither forwarded
    nor recorded.

    >>> with JobGroup() as jobs:
    ...     started = jobs.start(["python", "train.py"], device_env(smimig.devices(0)[0]))
    ...     jobs.wait(), jobs.received
    ([0], None)

    Attributes:
        processes: the jobs started, in order.
        received: the last signal forwarded or held back while the group was open (None: none came).
    """

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self.received: int | None = None
        self._previous: dict[int, interrupts.Handler] = {}
        self._starting = False
        self._held: list[int] = []

    def __enter__(self) -> JobGroup:
        self._previous = interrupts.install(FORWARDED_SIGNALS, self._handle)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        interrupts.restore(self._previous)
        self._previous = {}

    def start(self, command: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        """Start ``command`` (argv, no shell) with ``env``, in a session of its own (:func:`~smimig.runner.spawn`)."""
        self._starting = True  # a signal now waits until the job is known, then goes to it
        try:
            process = spawn(command, env)
            self.processes.append(process)
        finally:
            self._starting = False
        held, self._held = self._held, []
        for signum in held:
            self._forward(signum)
        return process

    def wait(self) -> list[int]:
        """Wait for every job; their exit codes (-N for a job that signal N killed), in the order started."""
        return [process.wait() for process in self.processes]

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._starting:
            self.received = signum
            self._held.append(signum)
            return
        if not self.processes:  # nothing to forward to yet: the signal does what it did before
            previous = self._previous.get(signum)
            if callable(previous):
                previous(signum, frame)
                return
            raise interrupts.exception_for(signum)
        self._forward(signum)

    def _forward(self, signum: int) -> None:
        self.received = signum
        for process in self.processes:
            if process.returncode is None:  # not reaped yet, so its process id is still its own
                _signal_group(process, signum)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    # the group is gone, or a setuid job changed hands: nothing to send it
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)  # its own session: the group's id is its process id


def run_on_each(
    command: Sequence[str], gpu: Ids = None, *, wait: bool = True, smi: Smi | None = None
) -> list[DeviceRun]:
    """Start ``command`` once per MIG device, each with ``CUDA_VISIBLE_DEVICES`` set to that device, each in a
    session of its own.

    With ``wait`` (the default) it returns when all have finished, with their exit codes; a SIGINT, SIGTERM
    or SIGHUP that arrives meanwhile (main thread) is passed on to the jobs (:class:`JobGroup`) and, once
    they have ended, raised again here as it would have been without them (Ctrl-C: ``KeyboardInterrupt``).
    Without ``wait`` it returns at once, with ``returncode`` None (the processes carry on).
    """
    devices = (smi or default_client()).devices(gpu)
    with JobGroup() as jobs:
        started = []
        for device in devices:
            if jobs.received is not None:  # stopped while starting them: start no more
                break
            started.append((device, jobs.start(command, device_env(device))))
        if not wait:
            return [DeviceRun(device, process.pid, None) for device, process in started]
        codes = jobs.wait()
    if jobs.received is not None:
        signal.raise_signal(jobs.received)  # now, with the handler the caller had: they asked to stop
    return [DeviceRun(device, process.pid, code) for (device, process), code in zip(started, codes)]
