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

import os
from collections.abc import Mapping, Sequence
from typing import Union

import attrs

from smimig.client import Ids, Smi, default_client
from smimig.node_status import MigDeviceInfo
from smimig.runner import spawn

__all__ = ["DeviceRun", "cuda_visible_devices", "device_env", "run_on_each"]

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


@attrs.frozen
class DeviceRun:
    """One process started on one MIG device, and its exit code once it has finished (None before)."""

    device: MigDeviceInfo
    pid: int
    returncode: int | None


def run_on_each(
    command: Sequence[str], gpu: Ids = None, *, wait: bool = True, smi: Smi | None = None
) -> list[DeviceRun]:
    """Start ``command`` once per MIG device, each with ``CUDA_VISIBLE_DEVICES`` set to that device.

    With ``wait`` (the default) it returns when all have finished, with their exit codes; otherwise at
    once, with ``returncode`` None (the processes carry on).
    """
    devices = (smi or default_client()).devices(gpu)
    started = [(device, spawn(command, device_env(device))) for device in devices]
    return [DeviceRun(device, process.pid, process.wait() if wait else None) for device, process in started]
