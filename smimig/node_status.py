"""One view of a node's MIG state: GPUs, their mode, GPU instances, compute instances and device UUIDs.

``Smi.status()`` reads ``-L``, the MIG mode query, ``-lgi``, ``-lci``, ``-lgip`` with ``-lgipp``, and plain
``nvidia-smi`` (whose "MIG devices:" table ties each MIG device index to its GI and CI, and whose
"Processes:" table says what runs where), and the lease ledger; it joins them here, in :func:`build_status`,
a pure function of those listings. Each GPU in MIG mode is drawn as a slice map (:mod:`smimig.slice_map`):
in ASCII in the text, as an SVG in Jupyter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from smimig._repr import AttrsRepr
from smimig.models import (
    ComputeInstance,
    Gpu,
    GpuInstance,
    GpuInstancePlacements,
    GpuInstanceProfile,
    GpuProcess,
    MigDeviceUsage,
    MigMode,
)

if TYPE_CHECKING:
    from smimig.client import Smi
    from smimig.ledger import LeaseRecord
    from smimig.listing import Listing
    from smimig.slice_map import SliceMap

__all__ = [
    "ComputeInstanceStatus",
    "GpuInstanceStatus",
    "GpuStatus",
    "MigDeviceInfo",
    "NodeStatus",
    "build_devices",
    "build_status",
    "read_leases",
    "read_plain_table",
]


@attrs.frozen(repr=False)
class MigDeviceInfo(AttrsRepr):
    """A MIG device: where it is (GPU, GI, CI), what it is, and the UUID for ``CUDA_VISIBLE_DEVICES``."""

    gpu: int
    gi: int
    ci: int
    index: int
    uuid: str
    name: str

    @property
    def cuda_visible_devices(self) -> str:
        """The value to put in ``CUDA_VISIBLE_DEVICES`` to run a process on this device."""
        return self.uuid


@attrs.frozen(repr=False)
class ComputeInstanceStatus(AttrsRepr):
    """A compute instance and, when nvidia-smi lists it as a MIG device, that device."""

    ci: ComputeInstance
    device: MigDeviceInfo | None


@attrs.frozen(repr=False)
class GpuInstanceStatus(AttrsRepr):
    gi: GpuInstance
    compute_instances: tuple[ComputeInstanceStatus, ...]


@attrs.frozen(repr=False)
class GpuStatus(AttrsRepr):
    """One GPU: identity, MIG mode, its GPU instances (with their CIs) and the room left per profile."""

    gpu: Gpu
    mode: MigMode
    gpu_instances: tuple[GpuInstanceStatus, ...]
    profiles: tuple[GpuInstanceProfile, ...]
    # A view of the fields above (and of the placements, processes and leases status read), not data of its
    # own: private, so --json leaves it out, as it leaves out every attribute whose name starts with "_".
    _slice_map: SliceMap | None = attrs.field(default=None, alias="slice_map", repr=False)

    @property
    def slice_map(self) -> SliceMap | None:
        """The GPU drawn as its row of memory slices (:class:`~smimig.slice_map.SliceMap`); None with MIG off."""
        return self._slice_map

    @property
    def mode_text(self) -> str:
        if not self.mode.supported:
            return "MIG not supported"
        text = "MIG on" if self.mode.current else "MIG off"
        if self.mode.is_pending:
            text += f" (pending {'on' if self.mode.pending else 'off'}: needs a GPU reset or an idle GPU)"
        return text


@attrs.frozen(repr=False)
class NodeStatus(AttrsRepr):
    """Every GPU of the node; prints as a tree, shows as nested tables in Jupyter."""

    gpus: tuple[GpuStatus, ...]

    def lines(self) -> list[str]:
        lines = []
        for status in self.gpus:
            gpu = status.gpu
            lines.append(f"GPU {gpu.index}  {gpu.name}  {gpu.uuid}  {status.mode_text}")
            if status.slice_map is not None:
                lines.extend(f"  {line}" for line in status.slice_map.lines())
            for gi_status in status.gpu_instances:
                gi = gi_status.gi
                lines.append(f"  GI {gi.id:<2} {gi.name:<16} profile {gi.profile_id:<3} placement {gi.placement}")
                for ci_status in gi_status.compute_instances:
                    ci = ci_status.ci
                    uuid = ci_status.device.uuid if ci_status.device else "(no MIG device listed)"
                    lines.append(f"    CI {ci.id:<2} {ci.name:<16} placement {ci.placement or '?'}  {uuid}")
                if not gi_status.compute_instances:
                    lines.append("    (no compute instance: create one to get a MIG device)")
            if status.mode.current and not status.gpu_instances:
                lines.append("  (no GPU instances)")
            if status.profiles:
                free = ", ".join(f"{p.short_name} {p.free}/{p.total}" for p in status.profiles)
                lines.append(f"  free: {free}")
        return lines

    def __str__(self) -> str:
        return "\n".join(self.lines()) if self.gpus else "(no GPUs)"

    def _repr_html_(self) -> str:
        import html  # noqa: PLC0415  # only in Jupyter: `smimig status` does not load it

        parts = []
        for status in self.gpus:
            gpu = status.gpu
            parts.append(
                f"<h4>GPU {gpu.index}: {html.escape(gpu.name)} <small>{html.escape(gpu.uuid)}</small>"
                f" — {html.escape(status.mode_text)}</h4>"
            )
            if status.slice_map is not None:
                parts.append(f"<div>{status.slice_map.svg()}</div>")
            rows = []
            for gi_status in status.gpu_instances:
                gi = gi_status.gi
                cis = gi_status.compute_instances or (None,)
                for ci_status in cis:
                    ci_cells = (
                        [
                            str(ci_status.ci.id),
                            ci_status.ci.name,
                            str(ci_status.ci.placement or "?"),  # early drivers do not say
                            ci_status.device.uuid if ci_status.device else "",
                        ]
                        if ci_status
                        else ["", "", "", ""]
                    )
                    cells = [str(gi.id), gi.name, str(gi.placement), *ci_cells]
                    rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
            if rows:
                head = "".join(
                    f"<th>{name}</th>"
                    for name in (
                        "GI",
                        "profile",
                        "placement",
                        "CI",
                        "CI profile",
                        "CI placement",
                        "MIG device UUID",
                    )
                )
                parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
            if status.profiles:
                free = ", ".join(f"{html.escape(p.short_name)} {p.free}/{p.total}" for p in status.profiles)
                parts.append(f"<p>free: {free}</p>")
        return "".join(parts) or "<p><em>(no GPUs)</em></p>"


def build_devices(gpus: Sequence[Gpu], usage: Sequence[MigDeviceUsage]) -> list[MigDeviceInfo]:
    """Join ``-L`` (device index -> UUID, name) with the "MIG devices:" table (index -> GI, CI)."""
    by_index = {(device.gpu, device.index): device for gpu in gpus for device in gpu.mig_devices}
    devices = []
    for row in usage:
        device = by_index.get((row.gpu, row.index))
        if device is not None:
            devices.append(MigDeviceInfo(row.gpu, row.gi, row.ci, row.index, device.uuid, device.name))
    return devices


def read_plain_table(smi: Smi, gpu: Sequence[int] | None) -> tuple[Listing[MigDeviceUsage], Listing[GpuProcess]]:
    """The "MIG devices:" and "Processes:" tables of one plain ``nvidia-smi [-i N]`` call."""
    from smimig import commands  # noqa: PLC0415  # the registry is loaded with the client already

    result = smi.read_raw(commands.MIG_DEVICES, gpu)
    return smi.parse(commands.MIG_DEVICES, result), smi.parse(commands.PROCESSES, result)


def read_leases(smi: Smi) -> list[LeaseRecord]:
    """The live leases of the ledger beside ``smi``'s node lock (:func:`smimig.ledger.live_leases`); none when
    the ledger cannot be trusted (``smimig doctor`` and ``smimig leases`` say why): status still shows the
    node, only without lease marks. No ledger directory (nobody has leased on this node): none, without
    loading the ledger's machinery, which would cost every ``smimig status`` on a MIG node ~7 ms."""
    import os  # noqa: PLC0415

    from smimig.lock_paths import ledger_directory, lock_file_for  # noqa: PLC0415

    if not os.path.isdir(ledger_directory(lock_file_for(smi))):
        return []
    from smimig.errors import LedgerError  # noqa: PLC0415
    from smimig.ledger import live_leases  # noqa: PLC0415  # the ledger only for the marks

    try:
        return live_leases(smi)
    except LedgerError:
        return []


def build_status(  # one keyword per listing joined
    *,
    gpus: Sequence[Gpu],
    modes: Sequence[MigMode],
    gis: Sequence[GpuInstance],
    cis: Sequence[ComputeInstance],
    profiles: Sequence[GpuInstanceProfile],
    usage: Sequence[MigDeviceUsage],
    placements: Sequence[GpuInstancePlacements] = (),
    processes: Sequence[GpuProcess] = (),
    leases: Sequence[LeaseRecord] = (),
) -> NodeStatus:
    """Join the listings into one :class:`NodeStatus`; each GPU in MIG mode gets its slice map, drawn from
    its profiles and their ``placements`` (without placements, none)."""
    mode_of = {mode.gpu: mode for mode in modes}
    found = build_devices(gpus, usage)
    devices = {(device.gpu, device.gi, device.ci): device for device in found}
    statuses = []
    for gpu in gpus:
        gi_statuses = tuple(
            GpuInstanceStatus(
                gi,
                tuple(
                    ComputeInstanceStatus(ci, devices.get((gpu.index, gi.id, ci.id)))
                    for ci in cis
                    if (ci.gpu, ci.gi) == (gpu.index, gi.id)
                ),
            )
            for gi in gis
            if gi.gpu == gpu.index
        )
        mode = mode_of.get(gpu.index, MigMode(gpu.index, None, False, False, supported=False))
        own_profiles = tuple(profile for profile in profiles if profile.gpu == gpu.index)
        drawn = None
        if mode.current and any(entry.gpu == gpu.index for entry in placements):
            from smimig.slice_map import build_map, geometries  # noqa: PLC0415  # drawing only where MIG is on

            drawn = build_map(
                gpu.index,
                geometries(own_profiles, placements, gpu.index),
                gis,
                cis,
                devices=found,
                processes=processes,
                leases=leases,
                name=gpu.name,
            )
        statuses.append(GpuStatus(gpu, mode, gi_statuses, own_profiles, slice_map=drawn))
    return NodeStatus(tuple(statuses))
