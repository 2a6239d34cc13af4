"""smimig: NVIDIA Multi-Instance GPU partitioning, scriptable, typed and safe.

>>> import smimig
>>> smimig.list_gis(0)
[GpuInstance(gpu=0, name='MIG 2g.12gb', profile_id=5, id=1, placement=Placement(start=0, size=2)), ...]

The module-level functions run nvidia-smi on this machine through a default :class:`Smi`, made on first
use; ``smimig.Smi(runner=...)`` gives the same API over a runner of your choice. Importing smimig runs
nothing and needs no GPU.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names, for type checkers and readers; at run time they load on first use
    from smimig.arguments import CiProfileSpec, GiProfileSpec
    from smimig.client import Ids, Smi
    from smimig.diagnostics import DoctorReport, doctor
    from smimig.errors import (
        ApplyError,
        InstanceBusy,
        LeaseError,
        MigOperationError,
        NvidiaSmiError,
        NvidiaSmiNotFound,
        NvidiaSmiTimeout,
        ParseError,
        PermissionDenied,
        RemoteError,
        SmimigError,
    )
    from smimig.jobs import DeviceRun, cuda_visible_devices, device_env, run_on_each
    from smimig.layout import GiSpec, Layout, LayoutError, MigPartedDevice
    from smimig.leases import Lease, lease
    from smimig.listing import Listing
    from smimig.models import (
        ComputeInstance,
        ComputeInstancePlacements,
        ComputeInstanceProfile,
        CreatedComputeInstance,
        CreatedGpuInstance,
        DestroyedComputeInstance,
        DestroyedGpuInstance,
        Gpu,
        GpuInstance,
        GpuInstancePlacements,
        GpuInstanceProfile,
        GpuProcess,
        MigDevice,
        MigDeviceUsage,
        MigMode,
        MigModeChange,
        OperationFailure,
        OperationOutput,
        Placement,
    )
    from smimig.node_status import ComputeInstanceStatus, GpuInstanceStatus, GpuStatus, MigDeviceInfo, NodeStatus
    from smimig.planner import ApplyResult, GpuPlan, Plan, Step, apply, export, load_layout, plan
    from smimig.runner import Runner, RunResult, SshRunner, SubprocessRunner

__all__ = [
    "ApplyError",
    "ApplyResult",
    "CiProfileSpec",
    "ComputeInstance",
    "ComputeInstancePlacements",
    "ComputeInstanceProfile",
    "ComputeInstanceStatus",
    "CreatedComputeInstance",
    "CreatedGpuInstance",
    "DestroyedComputeInstance",
    "DestroyedGpuInstance",
    "DeviceRun",
    "DoctorReport",
    "GiProfileSpec",
    "GiSpec",
    "Gpu",
    "GpuInstance",
    "GpuInstancePlacements",
    "GpuInstanceProfile",
    "GpuInstanceStatus",
    "GpuPlan",
    "GpuProcess",
    "GpuStatus",
    "Ids",
    "InstanceBusy",
    "Layout",
    "LayoutError",
    "Lease",
    "LeaseError",
    "Listing",
    "MigDevice",
    "MigDeviceInfo",
    "MigDeviceUsage",
    "MigMode",
    "MigModeChange",
    "MigOperationError",
    "MigPartedDevice",
    "NodeStatus",
    "NvidiaSmiError",
    "NvidiaSmiNotFound",
    "NvidiaSmiTimeout",
    "OperationFailure",
    "OperationOutput",
    "ParseError",
    "PermissionDenied",
    "Placement",
    "Plan",
    "RemoteError",
    "RunResult",
    "Runner",
    "Smi",
    "SmimigError",
    "SshRunner",
    "Step",
    "SubprocessRunner",
    "apply",
    "create_ci",
    "create_gi",
    "cuda_visible_devices",
    "destroy_ci",
    "destroy_gi",
    "device_env",
    "devices",
    "disable_mig",
    "doctor",
    "enable_mig",
    "export",
    "lease",
    "list_ci_placements",
    "list_ci_profiles",
    "list_cis",
    "list_gi_placements",
    "list_gi_profiles",
    "list_gis",
    "list_gpus",
    "list_mig_devices",
    "list_processes",
    "load_layout",
    "mig_mode",
    "plan",
    "run_on_each",
    "status",
]

__version__ = "0.1.0"

# Where each public name lives: `import smimig` loads none of them (see benchmarks/run.py); the first
# use of a name imports its module.
_EXPORTS = {
    "ApplyError": "smimig.errors",
    "ApplyResult": "smimig.planner",
    "CiProfileSpec": "smimig.arguments",
    "ComputeInstance": "smimig.models",
    "ComputeInstancePlacements": "smimig.models",
    "ComputeInstanceProfile": "smimig.models",
    "ComputeInstanceStatus": "smimig.node_status",
    "CreatedComputeInstance": "smimig.models",
    "CreatedGpuInstance": "smimig.models",
    "DestroyedComputeInstance": "smimig.models",
    "DestroyedGpuInstance": "smimig.models",
    "DeviceRun": "smimig.jobs",
    "GiProfileSpec": "smimig.arguments",
    "GiSpec": "smimig.layout",
    "Gpu": "smimig.models",
    "GpuInstance": "smimig.models",
    "GpuInstancePlacements": "smimig.models",
    "GpuInstanceProfile": "smimig.models",
    "GpuInstanceStatus": "smimig.node_status",
    "GpuPlan": "smimig.planner",
    "GpuProcess": "smimig.models",
    "GpuStatus": "smimig.node_status",
    "Ids": "smimig.client",
    "InstanceBusy": "smimig.errors",
    "Layout": "smimig.layout",
    "LayoutError": "smimig.errors",
    "DoctorReport": "smimig.diagnostics",
    "Lease": "smimig.leases",
    "LeaseError": "smimig.errors",
    "doctor": "smimig.diagnostics",
    "lease": "smimig.leases",
    "Listing": "smimig.listing",
    "MigDevice": "smimig.models",
    "MigDeviceInfo": "smimig.node_status",
    "MigDeviceUsage": "smimig.models",
    "MigMode": "smimig.models",
    "MigModeChange": "smimig.models",
    "MigOperationError": "smimig.errors",
    "MigPartedDevice": "smimig.layout",
    "NodeStatus": "smimig.node_status",
    "NvidiaSmiError": "smimig.errors",
    "NvidiaSmiNotFound": "smimig.errors",
    "NvidiaSmiTimeout": "smimig.errors",
    "OperationFailure": "smimig.models",
    "OperationOutput": "smimig.models",
    "ParseError": "smimig.errors",
    "PermissionDenied": "smimig.errors",
    "Placement": "smimig.models",
    "Plan": "smimig.planner",
    "RemoteError": "smimig.errors",
    "RunResult": "smimig.runner",
    "SshRunner": "smimig.runner",
    "Runner": "smimig.runner",
    "Smi": "smimig.client",
    "SmimigError": "smimig.errors",
    "Step": "smimig.planner",
    "SubprocessRunner": "smimig.runner",
    "apply": "smimig.planner",
    "cuda_visible_devices": "smimig.jobs",
    "device_env": "smimig.jobs",
    "export": "smimig.planner",
    "load_layout": "smimig.planner",
    "plan": "smimig.planner",
    "run_on_each": "smimig.jobs",
}


_SUBMODULES = frozenset(
    (
        "arguments",
        "cli",
        "client",
        "diagnostics",
        "errors",
        "jobs",
        "layout",
        "leases",
        "listing",
        "models",
        "node_status",
        "parsers",
        "planner",
        "runner",
        "sim",
    )
)


def __getattr__(name: str) -> Any:  # noqa: ANN401  # any public object
    if name in _SUBMODULES:  # smimig.parsers.parse_gis(...) after a bare `import smimig`
        return importlib.import_module(f"smimig.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'smimig' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _client() -> Smi:
    from smimig.client import default_client  # noqa: PLC0415  # loaded on first use, not at import

    return default_client()


def list_gpus(gpu: Ids = None) -> list[Gpu]:
    """The GPUs and their MIG devices. See :meth:`Smi.list_gpus`. Command: ``nvidia-smi -L``"""
    return _client().list_gpus(gpu)


def mig_mode(gpu: Ids = None) -> list[MigMode]:
    """Each GPU's MIG mode. See :meth:`Smi.mig_mode`. Command: ``nvidia-smi --query-gpu=…``"""
    return _client().mig_mode(gpu)


def list_gi_profiles(gpu: Ids = None) -> list[GpuInstanceProfile]:
    """GPU instance profiles. See :meth:`Smi.list_gi_profiles`. Command: ``nvidia-smi mig -lgip``"""
    return _client().list_gi_profiles(gpu)


def list_gi_placements(gpu: Ids = None) -> list[GpuInstancePlacements]:
    """GPU instance placements. See :meth:`Smi.list_gi_placements`. Command: ``nvidia-smi mig -lgipp``"""
    return _client().list_gi_placements(gpu)


def list_gis(gpu: Ids = None) -> list[GpuInstance]:
    """GPU instances. See :meth:`Smi.list_gis`. Command: ``nvidia-smi mig -lgi``"""
    return _client().list_gis(gpu)


def list_ci_profiles(gpu: Ids = None, gi: Ids = None) -> list[ComputeInstanceProfile]:
    """Compute instance profiles. See :meth:`Smi.list_ci_profiles`. Command: ``nvidia-smi mig -lcip``"""
    return _client().list_ci_profiles(gpu, gi)


def list_ci_placements(gpu: Ids = None, gi: Ids = None) -> list[ComputeInstancePlacements]:
    """Compute instance placements. See :meth:`Smi.list_ci_placements`. Command: ``nvidia-smi mig -lcipp``"""
    return _client().list_ci_placements(gpu, gi)


def list_cis(gpu: Ids = None, gi: Ids = None) -> list[ComputeInstance]:
    """Compute instances. See :meth:`Smi.list_cis`. Command: ``nvidia-smi mig -lci``"""
    return _client().list_cis(gpu, gi)


def list_mig_devices(gpu: Ids = None) -> list[MigDeviceUsage]:
    """The "MIG devices:" table. See :meth:`Smi.list_mig_devices`. Command: ``nvidia-smi``"""
    return _client().list_mig_devices(gpu)


def enable_mig(gpu: int | Sequence[int]) -> list[MigModeChange]:
    """Turn MIG mode on. See :meth:`Smi.enable_mig`. Command: ``nvidia-smi -i N -mig 1``"""
    return _client().enable_mig(gpu)


def disable_mig(gpu: int | Sequence[int]) -> list[MigModeChange]:
    """Turn MIG mode off. See :meth:`Smi.disable_mig`. Command: ``nvidia-smi -i N -mig 0``"""
    return _client().disable_mig(gpu)


def create_gi(gpu: int, profiles: Sequence[GiProfileSpec], ci: bool = False) -> list[CreatedGpuInstance]:
    """Create GPU instances. See :meth:`Smi.create_gi`. Command: ``nvidia-smi mig -i N -cgi … [-C]``"""
    return _client().create_gi(gpu, profiles, ci=ci)


def create_ci(gpu: int, gi: int, profiles: Sequence[CiProfileSpec] | None = None) -> list[CreatedComputeInstance]:
    """Create compute instances. See :meth:`Smi.create_ci`. Command: ``nvidia-smi mig -i N -gi G -cci …``"""
    return _client().create_ci(gpu, gi, profiles)


def destroy_ci(gpu: Ids = None, gi: Ids = None, ci: Ids = None) -> list[DestroyedComputeInstance]:
    """Destroy compute instances. See :meth:`Smi.destroy_ci`. Command: ``nvidia-smi mig -dci``"""
    return _client().destroy_ci(gpu, gi, ci)


def destroy_gi(gpu: Ids = None, gi: Ids = None) -> list[DestroyedGpuInstance]:
    """Destroy GPU instances. See :meth:`Smi.destroy_gi`. Command: ``nvidia-smi mig -dgi``"""
    return _client().destroy_gi(gpu, gi)


def devices(gpu: Ids = None) -> list[MigDeviceInfo]:
    """The MIG devices with their ids and UUIDs. See :meth:`Smi.devices`. Command: ``nvidia-smi -L``"""
    return _client().devices(gpu)


def status(gpu: Ids = None) -> NodeStatus:
    """The node's MIG state at a glance. See :meth:`Smi.status`."""
    return _client().status(gpu)


def list_processes(gpu: Ids = None) -> list[GpuProcess]:
    """Processes on the GPUs. See :meth:`Smi.list_processes`. Command: ``nvidia-smi``"""
    return _client().list_processes(gpu)
