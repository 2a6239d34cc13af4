"""Frozen, typed models of what nvidia-smi prints about MIG.

Every model is a frozen, slotted attrs class: hashable, comparable, safe to share. Field names follow
nvidia-smi's own column names; ``gpu`` is always the GPU's index, ``gi`` a GPU instance id, ``ci`` a compute
instance id. ``attrs.asdict(model)`` gives plain data (the fixtures' expected results use exactly that).
:class:`Placement` is one of them, defined beside the slice rules in :mod:`smimig.geometry`; profile names are
read by that module's one grammar. What the changes report (``MigModeChange``, ``CreatedGpuInstance`` …) is
defined in :mod:`smimig.changes` and imported from here as well, on first use: attrs makes each class at
start-up (~0.3 ms), and a command that only lists need not make those.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from smimig._repr import AttrsRepr
from smimig.geometry import Placement, ProfileName, short_profile_name

if TYPE_CHECKING:  # loaded on first use by __getattr__ below
    from smimig.changes import (
        CreatedComputeInstance,
        CreatedGpuInstance,
        DestroyedComputeInstance,
        DestroyedGpuInstance,
        MigModeChange,
        OperationFailure,
        OperationOutput,
    )

__all__ = [
    "ComputeInstance",
    "ComputeInstancePlacements",
    "ComputeInstanceProfile",
    "CreatedComputeInstance",
    "CreatedGpuInstance",
    "DestroyedComputeInstance",
    "DestroyedGpuInstance",
    "Gpu",
    "GpuInstance",
    "GpuInstancePlacements",
    "GpuInstanceProfile",
    "GpuProcess",
    "MigDevice",
    "MigDeviceUsage",
    "MigMode",
    "MigModeChange",
    "OperationFailure",
    "OperationOutput",
    "PciDeviceId",
    "Placement",
]

_CHANGES = frozenset(
    (
        "CreatedComputeInstance",
        "CreatedGpuInstance",
        "DestroyedComputeInstance",
        "DestroyedGpuInstance",
        "MigModeChange",
        "OperationFailure",
        "OperationOutput",
    )
)


def __getattr__(name: str) -> Any:  # noqa: ANN401  # a model class
    if name in _CHANGES:
        from smimig import changes  # noqa: PLC0415  # made when first asked for: a listing does not need them

        return getattr(changes, name)
    raise AttributeError(f"module 'smimig.models' has no attribute {name!r}")


@attrs.frozen(repr=False)
class MigDevice(AttrsRepr):
    """A MIG device as ``nvidia-smi -L`` lists it under its GPU; ``uuid`` goes into CUDA_VISIBLE_DEVICES."""

    gpu: int
    index: int
    name: str
    uuid: str


@attrs.frozen(repr=False)
class Gpu(AttrsRepr):
    """A physical GPU from ``nvidia-smi -L`` with the MIG devices listed under it."""

    index: int
    name: str
    uuid: str
    mig_devices: tuple[MigDevice, ...] = ()


@attrs.frozen(repr=False)
class MigMode(AttrsRepr):
    """A GPU's MIG mode from ``--query-gpu=index,pci.bus_id,mig.mode.current,mig.mode.pending``.

    ``current != pending`` means a change waits for a GPU reset (or for processes to leave the GPU).
    ``supported`` is False when nvidia-smi prints ``[N/A]``: the GPU cannot do MIG at all.
    ``bus_id`` is None only when the query did not ask for it.
    """

    gpu: int
    bus_id: str | None
    current: bool
    pending: bool
    supported: bool = True

    @property
    def is_pending(self) -> bool:
        """Whether a mode change has been asked for but is not in effect yet."""
        return self.current != self.pending


@attrs.frozen(repr=False)
class PciDeviceId(AttrsRepr):
    """A GPU's PCI device id from ``--query-gpu=index,pci.device_id`` (``0x20B010DE``: NVIDIA's id, as the
    ``device-filter`` entries of mig-parted's configs select by)."""

    gpu: int
    device_id: str
    subsystem_id: str | None = None
    """From ``pci.sub_device_id`` when asked for (``0x16C110DE``), what mig-parted's ``0xDEVICE:0xSUBSYSTEM``
    filters also match on."""


class _ProfileNaming:
    """Derived properties shared by GPU and compute instance profiles (read off the name)."""

    __slots__ = ()
    name: str

    @property
    def short_name(self) -> str:
        """The name without its ``MIG`` prefix, e.g. ``"2g.12gb"`` (what ``-cgi`` accepts)."""
        return short_profile_name(self.name)

    @property
    def media_extensions(self) -> bool:
        """Whether the profile carries the media extensions (``+me``, ``+me.all``)."""
        name = ProfileName.read(self.name)
        return name is not None and name.media_extensions


@attrs.frozen(repr=False)
class GpuInstanceProfile(_ProfileNaming, AttrsRepr):
    """A GPU instance profile from ``nvidia-smi mig -lgip``; ``free``/``total`` count instances."""

    gpu: int
    name: str
    id: int
    free: int
    total: int
    memory_gib: float
    p2p: bool
    sm: int
    dec: int
    enc: int
    ce: int
    jpeg: int
    ofa: int

    @property
    def slices(self) -> int | None:
        """The number of compute slices in the name (``3`` for ``3g.40gb``); None if the name is unusual."""
        name = ProfileName.read(self.name)
        return name.gi_slices if name is not None else None


@attrs.frozen(repr=False)
class GpuInstancePlacements(AttrsRepr):
    """The possible placements of one GPU instance profile, from ``nvidia-smi mig -lgipp``."""

    gpu: int
    profile_id: int
    placements: tuple[Placement, ...]


@attrs.frozen(repr=False)
class GpuInstance(AttrsRepr):
    """A GPU instance from ``nvidia-smi mig -lgi``."""

    gpu: int
    name: str
    profile_id: int
    id: int
    placement: Placement

    @property
    def short_name(self) -> str:
        """The profile name without its ``MIG`` prefix, e.g. ``"2g.12gb"``."""
        return short_profile_name(self.name)


@attrs.frozen(repr=False)
class ComputeInstanceProfile(_ProfileNaming, AttrsRepr):
    """A compute instance profile available in GPU instance ``gi``, from ``nvidia-smi mig -lcip``.

    ``is_default`` marks the profile that ``-cci`` (and ``-cgi … -C``) uses when none is named.
    """

    gpu: int
    gi: int
    name: str
    id: int
    is_default: bool
    free: int
    total: int
    sm: int
    dec: int
    enc: int
    ofa: int
    ce: int
    jpeg: int

    @property
    def slices(self) -> int | None:
        """The compute slices this profile takes (``1`` for ``1c.3g.40gb``, ``3`` for ``3g.40gb``)."""
        name = ProfileName.read(self.name)
        return name.slices if name is not None else None


@attrs.frozen(repr=False)
class ComputeInstancePlacements(AttrsRepr):
    """The possible placements of a compute instance profile inside GPU instance ``gi`` (``-lcipp``)."""

    gpu: int
    gi: int
    profile_id: int
    placements: tuple[Placement, ...]


@attrs.frozen(repr=False)
class ComputeInstance(AttrsRepr):
    """A compute instance from ``nvidia-smi mig -lci``; ``placement`` is relative to its GPU instance.

    ``placement`` is None where the driver does not say: early drivers print ``-lci`` without a Placement
    column.
    """

    gpu: int
    gi: int
    name: str
    profile_id: int
    id: int
    placement: Placement | None

    @property
    def short_name(self) -> str:
        """The profile name without its ``MIG`` prefix, e.g. ``"1c.2g.12gb"``."""
        return short_profile_name(self.name)


@attrs.frozen(repr=False)
class MigDeviceUsage(AttrsRepr):
    """A row of the "MIG devices:" table of plain ``nvidia-smi``.

    Compute instances that share a GPU instance share its memory: nvidia-smi prints the figures once, in a
    merged cell, and each of those rows carries the GPU instance's figures here.
    """

    gpu: int
    gi: int
    ci: int
    index: int
    memory_used_mib: int
    memory_total_mib: int
    bar1_used_mib: int
    bar1_total_mib: int
    sm: int
    ce: int
    enc: int
    dec: int
    ofa: int
    jpg: int


@attrs.frozen(repr=False)
class GpuProcess(AttrsRepr):
    """A row of the "Processes:" table of plain ``nvidia-smi``: who runs where.

    ``gi`` and ``ci`` are None for a process on a GPU in MIG mode off (nvidia-smi prints ``N/A``), as is
    ``memory_mib`` when nvidia-smi cannot tell.
    """

    gpu: int
    gi: int | None
    ci: int | None
    pid: int
    type: str
    name: str
    memory_mib: int | None
