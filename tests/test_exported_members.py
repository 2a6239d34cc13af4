"""The public surface is exactly what ``__all__`` says (as httpx pins its own), and loads lazily."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import smimig
from smimig import parsers

# Names the package root uses itself; not exports.
OWN = {"annotations", "Sequence", "TYPE_CHECKING", "Any", "importlib"}

# The public surface, pinned: adding or removing a name is a decision, made here on purpose (as httpx does).
PUBLIC = [
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
    "FakeRunner",
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
    "LeaseRecord",
    "LeaseWarning",
    "LedgerError",
    "Listing",
    "MigDevice",
    "MigDeviceInfo",
    "MigDeviceUsage",
    "MigMode",
    "MigModeChange",
    "MigOperationError",
    "MigPartedDevice",
    "NodeLockTimeout",
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
    "ReclaimOutcome",
    "ReclaimReport",
    "RemoteError",
    "RunResult",
    "Runner",
    "SliceMap",
    "Smi",
    "SmimigError",
    "SshRunner",
    "Step",
    "SubprocessRunner",
    "Terminated",
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
    "layout_map",
    "lease",
    "leases",
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
    "node_lock",
    "plan",
    "reclaim",
    "run_on_each",
    "simulate",
    "status",
    "use",
]


def test_the_public_surface_is_pinned() -> None:
    assert smimig.__all__ == PUBLIC


def test_every_function_at_the_root_is_a_method_of_smi() -> None:
    # The module-level functions are thin calls on the default Smi: each has a method of the same name.
    functions = [
        name
        for name in PUBLIC
        if name[0].islower() and name not in {"cuda_visible_devices", "device_env", "layout_map", "simulate", "use"}
    ]
    assert [name for name in functions if not callable(getattr(smimig.Smi, name, None))] == []


def test_use_swaps_the_default_client() -> None:
    from smimig.sim import SimulatedRunner  # noqa: PLC0415

    simulated = smimig.Smi(runner=SimulatedRunner("H200", gpus=2))
    previous = smimig.use(simulated)
    try:
        assert [gpu.name for gpu in smimig.list_gpus()] == ["NVIDIA H200", "NVIDIA H200"]
        smimig.enable_mig(1)
        assert smimig.plan(smimig.Layout.from_dict({1: ["3g.71gb"]})).steps
        assert smimig.export() == simulated.export()
    finally:
        assert smimig.use(previous) is simulated
    with pytest.raises(ValueError, match=r"takes a smimig\.Smi"):
        smimig.use("H200")  # type: ignore[arg-type]


def test_all_is_sorted_and_complete() -> None:
    assert smimig.__all__ == sorted(smimig.__all__)
    for name in smimig.__all__:
        assert getattr(smimig, name) is not None  # every promised name resolves (most load on first use)
    public = {name for name in dir(smimig) if not name.startswith("_") and not inspect.ismodule(getattr(smimig, name))}
    assert public - OWN == set(smimig.__all__)


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        smimig.nope  # noqa: B018


def test_import_is_lazy() -> None:
    code = "import sys, smimig; print(sorted(m for m in sys.modules if m.startswith('smimig')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['smimig']"


def test_parsers_all() -> None:
    assert parsers.__all__ == sorted(parsers.__all__)
    for name in parsers.__all__:
        assert hasattr(parsers, name)


def test_errors_share_one_base() -> None:
    for name in (
        "NvidiaSmiError",
        "NvidiaSmiNotFound",
        "NvidiaSmiTimeout",
        "ParseError",
        "LayoutError",
        "InstanceBusy",
    ):
        assert issubclass(getattr(smimig, name), smimig.SmimigError)


def test_no_submodule_shadows_a_public_name() -> None:
    code = (
        "import importlib, pkgutil, inspect, smimig\n"
        "for info in pkgutil.walk_packages(smimig.__path__, 'smimig.'):\n"
        "    if not info.name.endswith('__main__'): importlib.import_module(info.name)\n"
        "print([name for name in smimig.__all__ if inspect.ismodule(getattr(smimig, name))])"
    )
    shadowed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert shadowed.strip() == "[]"
