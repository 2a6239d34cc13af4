"""smimig: NVIDIA Multi-Instance GPU partitioning, scriptable, typed and safe.

>>> import smimig
>>> smimig.list_gis(0)
[GpuInstance(gpu=0, name='MIG 2g.12gb', profile_id=5, id=1, placement=Placement(start=0, size=2)), ...]

:class:`Smi` is the API: every operation is one of its methods, bound to one runner (this machine's
nvidia-smi, ``sudo -n``, ssh to another node, the simulator, your own). The module-level functions are thin
calls on a default ``Smi`` — this machine's nvidia-smi, made on first use — and :func:`use` swaps that
default (a simulated node in a notebook, a remote one). Importing smimig runs nothing and needs no GPU.

The package's names: the imports in the ``TYPE_CHECKING`` block below are the one list of what is exported
from submodules (at run time each loads on first use, read from that block), and the functions defined here
are the rest; ``__all__`` is both, sorted.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"  # the one place: pyproject.toml reads it from here

if TYPE_CHECKING:  # the exported names of submodules, one a line: the package's one list of them
    from contextlib import AbstractContextManager
    from os import PathLike

    from smimig.arguments import CiProfileSpec as CiProfileSpec
    from smimig.arguments import GiProfileSpec as GiProfileSpec
    from smimig.client import Ids as Ids
    from smimig.client import Smi as Smi
    from smimig.diagnostics import DoctorReport as DoctorReport
    from smimig.errors import ApplyError as ApplyError
    from smimig.errors import InstanceBusy as InstanceBusy
    from smimig.errors import LayoutError as LayoutError
    from smimig.errors import LeaseError as LeaseError
    from smimig.errors import LedgerError as LedgerError
    from smimig.errors import MigOperationError as MigOperationError
    from smimig.errors import NodeLockTimeout as NodeLockTimeout
    from smimig.errors import NvidiaSmiError as NvidiaSmiError
    from smimig.errors import NvidiaSmiNotFound as NvidiaSmiNotFound
    from smimig.errors import NvidiaSmiTimeout as NvidiaSmiTimeout
    from smimig.errors import ParseError as ParseError
    from smimig.errors import PermissionDenied as PermissionDenied
    from smimig.errors import RemoteError as RemoteError
    from smimig.errors import SmimigError as SmimigError
    from smimig.errors import Terminated as Terminated
    from smimig.jobs import DeviceRun as DeviceRun
    from smimig.jobs import cuda_visible_devices as cuda_visible_devices
    from smimig.jobs import device_env as device_env
    from smimig.layout import GiSpec as GiSpec
    from smimig.layout import Layout as Layout
    from smimig.layout import MigPartedDevice as MigPartedDevice
    from smimig.leasing import Lease as Lease
    from smimig.leasing import LeaseWarning as LeaseWarning
    from smimig.leasing import ReclaimOutcome as ReclaimOutcome
    from smimig.leasing import ReclaimReport as ReclaimReport
    from smimig.ledger import LeaseRecord as LeaseRecord
    from smimig.listing import Listing as Listing
    from smimig.models import ComputeInstance as ComputeInstance
    from smimig.models import ComputeInstancePlacements as ComputeInstancePlacements
    from smimig.models import ComputeInstanceProfile as ComputeInstanceProfile
    from smimig.models import CreatedComputeInstance as CreatedComputeInstance
    from smimig.models import CreatedGpuInstance as CreatedGpuInstance
    from smimig.models import DestroyedComputeInstance as DestroyedComputeInstance
    from smimig.models import DestroyedGpuInstance as DestroyedGpuInstance
    from smimig.models import Gpu as Gpu
    from smimig.models import GpuInstance as GpuInstance
    from smimig.models import GpuInstancePlacements as GpuInstancePlacements
    from smimig.models import GpuInstanceProfile as GpuInstanceProfile
    from smimig.models import GpuProcess as GpuProcess
    from smimig.models import MigDevice as MigDevice
    from smimig.models import MigDeviceUsage as MigDeviceUsage
    from smimig.models import MigMode as MigMode
    from smimig.models import MigModeChange as MigModeChange
    from smimig.models import OperationFailure as OperationFailure
    from smimig.models import OperationOutput as OperationOutput
    from smimig.models import Placement as Placement
    from smimig.node_status import ComputeInstanceStatus as ComputeInstanceStatus
    from smimig.node_status import GpuInstanceStatus as GpuInstanceStatus
    from smimig.node_status import GpuStatus as GpuStatus
    from smimig.node_status import MigDeviceInfo as MigDeviceInfo
    from smimig.node_status import NodeStatus as NodeStatus
    from smimig.planner import ApplyResult as ApplyResult
    from smimig.planner import GpuPlan as GpuPlan
    from smimig.planner import Plan as Plan
    from smimig.planner import Step as Step
    from smimig.runner import Runner as Runner
    from smimig.runner import RunResult as RunResult
    from smimig.runner import SshRunner as SshRunner
    from smimig.runner import SubprocessRunner as SubprocessRunner
    from smimig.slice_map import SliceMap as SliceMap
    from smimig.slice_map import layout_map as layout_map
    from smimig.testing import FakeRunner as FakeRunner


def _read_exports() -> dict[str, str]:
    """Name -> module, read from the ``TYPE_CHECKING`` block above (its ``from M import N as N`` lines)."""
    exports: dict[str, str] = {}
    inside = False
    with open(__file__, encoding="utf-8") as source:
        for line in source:
            if line.startswith("if TYPE_CHECKING:"):
                inside = True
            elif inside and line.startswith("    from smimig."):
                module, _, imported = line.strip()[len("from ") :].partition(" import ")
                exports[imported.partition(" as ")[0]] = module
            elif inside and line.strip() and not line.startswith(" "):
                break
    return exports


_EXPORTS = _read_exports()

_SUBMODULES = frozenset(
    (
        "arguments",
        "cli",
        "client",
        "commands",
        "diagnostics",
        "errors",
        "exit_codes",
        "geometry",
        "interrupts",
        "jobs",
        "layout",
        "leasing",
        "listing",
        "models",
        "node_status",
        "parsers",
        "planner",
        "runner",
        "sim",
        "slice_map",
        "testing",
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


def use(smi: Smi | None) -> Smi | None:
    """Make ``smi`` the client behind the module-level functions (None: this machine's nvidia-smi again);
    return the previous one. See :func:`smimig.client.use`.

    >>> from smimig.sim import SimulatedRunner
    >>> previous = smimig.use(smimig.Smi(runner=SimulatedRunner("A30", gpus=4)))
    """
    from smimig.client import use as use_client  # noqa: PLC0415  # loaded on first use, not at import

    return use_client(smi)


def list_gpus(gpu: Ids = None) -> Listing[Gpu]:
    """The GPUs and their MIG devices. See :meth:`Smi.list_gpus`. Command: ``nvidia-smi -L``"""
    return _client().list_gpus(gpu)


def mig_mode(gpu: Ids = None) -> Listing[MigMode]:
    """Each GPU's MIG mode. See :meth:`Smi.mig_mode`. Command: ``nvidia-smi --query-gpu=…``"""
    return _client().mig_mode(gpu)


def list_gi_profiles(gpu: Ids = None) -> Listing[GpuInstanceProfile]:
    """GPU instance profiles. See :meth:`Smi.list_gi_profiles`. Command: ``nvidia-smi mig -lgip``"""
    return _client().list_gi_profiles(gpu)


def list_gi_placements(gpu: Ids = None) -> Listing[GpuInstancePlacements]:
    """GPU instance placements. See :meth:`Smi.list_gi_placements`. Command: ``nvidia-smi mig -lgipp``"""
    return _client().list_gi_placements(gpu)


def list_gis(gpu: Ids = None) -> Listing[GpuInstance]:
    """GPU instances. See :meth:`Smi.list_gis`. Command: ``nvidia-smi mig -lgi``"""
    return _client().list_gis(gpu)


def list_ci_profiles(gpu: Ids = None, gi: Ids = None) -> Listing[ComputeInstanceProfile]:
    """Compute instance profiles. See :meth:`Smi.list_ci_profiles`. Command: ``nvidia-smi mig -lcip``"""
    return _client().list_ci_profiles(gpu, gi)


def list_ci_placements(gpu: Ids = None, gi: Ids = None) -> Listing[ComputeInstancePlacements]:
    """Compute instance placements. See :meth:`Smi.list_ci_placements`. Command: ``nvidia-smi mig -lcipp``"""
    return _client().list_ci_placements(gpu, gi)


def list_cis(gpu: Ids = None, gi: Ids = None) -> Listing[ComputeInstance]:
    """Compute instances. See :meth:`Smi.list_cis`. Command: ``nvidia-smi mig -lci``"""
    return _client().list_cis(gpu, gi)


def list_mig_devices(gpu: Ids = None) -> Listing[MigDeviceUsage]:
    """The "MIG devices:" table. See :meth:`Smi.list_mig_devices`. Command: ``nvidia-smi``"""
    return _client().list_mig_devices(gpu)


def enable_mig(gpu: int | Sequence[int]) -> Listing[MigModeChange]:
    """Turn MIG mode on. See :meth:`Smi.enable_mig`. Command: ``nvidia-smi -i N -mig 1``"""
    return _client().enable_mig(gpu)


def disable_mig(gpu: int | Sequence[int]) -> Listing[MigModeChange]:
    """Turn MIG mode off. See :meth:`Smi.disable_mig`. Command: ``nvidia-smi -i N -mig 0``"""
    return _client().disable_mig(gpu)


def create_gi(gpu: int, profiles: Sequence[GiProfileSpec], ci: bool = False) -> Listing[CreatedGpuInstance]:
    """Create GPU instances. See :meth:`Smi.create_gi`. Command: ``nvidia-smi mig -i N -cgi … [-C]``"""
    return _client().create_gi(gpu, profiles, ci=ci)


def create_ci(gpu: int, gi: int, profiles: Sequence[CiProfileSpec] | None = None) -> Listing[CreatedComputeInstance]:
    """Create compute instances. See :meth:`Smi.create_ci`. Command: ``nvidia-smi mig -i N -gi G -cci …``"""
    return _client().create_ci(gpu, gi, profiles)


def destroy_ci(gpu: Ids = None, gi: Ids = None, ci: Ids = None) -> Listing[DestroyedComputeInstance]:
    """Destroy compute instances. See :meth:`Smi.destroy_ci`. Command: ``nvidia-smi mig -dci``"""
    return _client().destroy_ci(gpu, gi, ci)


def destroy_gi(gpu: Ids = None, gi: Ids = None) -> Listing[DestroyedGpuInstance]:
    """Destroy GPU instances. See :meth:`Smi.destroy_gi`. Command: ``nvidia-smi mig -dgi``"""
    return _client().destroy_gi(gpu, gi)


def devices(gpu: Ids = None) -> Listing[MigDeviceInfo]:
    """The MIG devices with their ids and UUIDs. See :meth:`Smi.devices`. Command: ``nvidia-smi -L``"""
    return _client().devices(gpu)


def status(gpu: Ids = None) -> NodeStatus:
    """The node's MIG state at a glance. See :meth:`Smi.status`."""
    return _client().status(gpu)


def list_processes(gpu: Ids = None) -> Listing[GpuProcess]:
    """Processes on the GPUs. See :meth:`Smi.list_processes`. Command: ``nvidia-smi``"""
    return _client().list_processes(gpu)


def simulate(node: str = "A30x4", *, reset: bool = False) -> Smi:
    """Point the module-level functions at a simulated node, and return its :class:`Smi`.

    The node is the one ``smimig --simulate NODE`` and ``smimig-sim --model NODE`` use (its state kept in
    your cache directory), so a notebook and a terminal on the same machine see one node; every call runs
    in this process. ``reset=True`` starts it over (MIG off everywhere). Models: ``smimig --simulate list``.

    >>> smi = smimig.simulate("A30x4", reset=True)
    >>> smimig.enable_mig(0)[0].enabled
    True
    >>> [gi.profile_name for gi in smimig.create_gi(0, ["2g.12gb", "2g.12gb"], ci=True)]
    ['MIG 2g.12gb', 'MIG 2g.12gb']

    Raises:
        ValueError: an empty or unknown node spec (the message lists the models), or a GPU count beyond 64.
    """
    from smimig.client import Smi  # noqa: PLC0415  # loaded on first use, not at import
    from smimig.sim import simulated_node  # noqa: PLC0415  # the simulator loads only when asked for

    smi = Smi(runner=simulated_node(node, reset=reset))
    use(smi)
    return smi


def load_layout(path: str | PathLike[str], *, config: str | None = None) -> Layout:
    """A layout from a file, or config ``config`` of a mig-parted file. See :meth:`Smi.load_layout`."""
    return _client().load_layout(path, config=config)


def plan(layout: Layout, *, force: bool = False) -> Plan:
    """The steps that would bring the node to ``layout``. See :meth:`Smi.plan`."""
    return _client().plan(layout, force=force)


def apply(layout: Layout, *, dry_run: bool = False, force: bool = False, rollback: bool = True) -> ApplyResult:
    """Bring the node to ``layout``. See :meth:`Smi.apply`."""
    return _client().apply(layout, dry_run=dry_run, force=force, rollback=rollback)


def export() -> Layout:
    """The node's MIG state as a Layout. See :meth:`Smi.export`."""
    return _client().export()


def lease(
    profile: GiProfileSpec,
    gpu: int | None = None,
    *,
    ci_profile: CiProfileSpec | None = None,
    lock_path: str | PathLike[str] | None = None,
    timeout: float | None = None,
    attempts: int = 8,
) -> AbstractContextManager[Lease]:
    """A fresh MIG device for a ``with`` block. See :meth:`Smi.lease` and :mod:`smimig.leases`."""
    return _client().lease(profile, gpu, ci_profile=ci_profile, lock_path=lock_path, timeout=timeout, attempts=attempts)


def leases() -> Listing[LeaseRecord]:
    """Every lease on the node, with whether its holder still runs. See :meth:`Smi.leases`."""
    return _client().leases()


def reclaim() -> ReclaimReport:
    """Destroy what orphaned leases left behind, identity checked first. See :meth:`Smi.reclaim`."""
    return _client().reclaim()


def node_lock(timeout: float | None = None) -> AbstractContextManager[PathLike[str]]:
    """Hold the node lock every change holds, for a ``with`` block. See :meth:`Smi.node_lock`."""
    return _client().node_lock(timeout)


def run_on_each(command: Sequence[str], gpu: Ids = None, *, wait: bool = True) -> list[DeviceRun]:
    """Start ``command`` once per MIG device. See :meth:`Smi.run_on_each`."""
    return _client().run_on_each(command, gpu, wait=wait)


def doctor(*, save_dir: str | PathLike[str] | None = None) -> DoctorReport:
    """Check the node. See :meth:`Smi.doctor`."""
    return _client().doctor(save_dir=save_dir)


__all__ = sorted(  # noqa: PLE0605  # built from the one list above and the functions defined here
    [
        *_EXPORTS,
        *(
            name
            for name, value in list(globals().items())
            if callable(value) and not name.startswith("_") and getattr(value, "__module__", None) == __name__
        ),
    ]
)
