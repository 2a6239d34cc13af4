"""The GPU models the simulator knows, as data.

Figures come from real recordings: the A30 from the seed walk-through (driver 545), the H100 80GB from
driver 580 captures (``fixtures/h100-80gb-driver580``), the A100 40GB from ``realdata/a100-40gb-figures.md``
(NVIDIA's published MIG tables agree). What is inferred rather than recorded is marked where it is defined.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

__all__ = ["MODELS", "CiProfileSpec", "GiProfile", "GpuModel", "ci_profiles_for", "model_named"]


@attrs.frozen
class GiProfile:
    """One GPU instance profile of a model, as ``-lgip`` and ``-lgipp`` print it."""

    id: int
    name: str
    compute_slices: int  # the "Ng" of the name: what compute instances divide
    size: int  # the placement size in memory slices (not always the "Ng": 3g.40gb takes 4)
    starts: tuple[int, ...]
    instances: int
    memory_gib: float
    memory_mib: int  # total memory of a MIG device in this GI, as plain nvidia-smi prints it
    sm: int
    dec: int
    enc: int
    ce: int
    jpeg: int
    ofa: int

    @property
    def short_name(self) -> str:
        return self.name[4:]

    @property
    def media(self) -> bool:
        """Owns the GPU's media engines (OFA): at most one such GI at a time (inferred from the limits)."""
        return self.ofa > 0


@attrs.frozen
class CiProfileSpec:
    """A compute instance profile inside a GI profile."""

    id: int
    name: str
    slices: int
    starts: tuple[int, ...]
    instances: int
    sm: int
    is_default: bool


@attrs.frozen
class GpuModel:
    """A MIG-capable GPU model and what its plain ``nvidia-smi`` table shows."""

    key: str
    name: str
    memory_mib: int
    bar1_mib: int  # BAR1 total of a MIG device (A30 seed: 16383; inferred for the others)
    power_cap_w: int
    driver: str
    cuda: str
    style: str  # "545" or "580": which driver's column widths the renderers use
    pci_device_id: str  # as --query-gpu=pci.device_id prints it (NVIDIA's ids, as mig-parted's filters use)
    gi_profiles: tuple[GiProfile, ...]
    uuids: tuple[str, ...] = ()  # GPU UUIDs from recordings, used for the first GPUs
    bus_ids: tuple[str, ...] = ()
    mig_uuids: Mapping[tuple[int, int, int], str] = attrs.field(factory=dict)  # (gpu, gi, ci) -> UUID

    def gi_profile(self, profile_id: int) -> GiProfile:
        for profile in self.gi_profiles:
            if profile.id == profile_id:
                return profile
        raise KeyError(profile_id)

    @property
    def slices(self) -> int:
        return max(start + profile.size for profile in self.gi_profiles for start in profile.starts)


def _gi(
    id: int,  # nvidia-smi's own column name
    short: str,
    slices: int,
    size: int,
    starts: tuple[int, ...],
    instances: int,
    memory_gib: float,
    memory_mib: int,
    engines: tuple[int, int, int, int, int, int],
) -> GiProfile:
    sm, dec, enc, ce, jpeg, ofa = engines
    return GiProfile(
        id,
        f"MIG {short}",
        slices,
        size,
        starts,
        instances,
        memory_gib,
        memory_mib,
        sm,
        dec,
        enc,
        ce,
        jpeg,
        ofa,
    )


# Compute instance profile ids follow NVML's numbering by compute slices (realdata/a100-40gb-figures.md).
_CI_ID = {1: 0, 2: 1, 3: 2, 4: 3, 7: 4, 8: 5, 6: 6}


def _ci_starts(slices: int, gi_slices: int) -> tuple[int, ...]:
    # 1c and 2c align to their size; 3c and 4c start at 0 or 4 (as 3g/4g GIs do); inferred from the A100.
    step = slices if slices <= 2 else 4
    return tuple(start for start in range(0, gi_slices, step) if start + slices <= gi_slices)


def ci_profiles_for(gi: GiProfile) -> tuple[CiProfileSpec, ...]:
    """The compute instance profiles a GI of this profile offers (seed A30 and A100 -lcip agree)."""
    sizes = [size for size in (1, 2, 3, 4, 7) if size < gi.compute_slices] + [gi.compute_slices]
    profiles = []
    for size in sizes:
        full = size == gi.compute_slices
        starts = _ci_starts(size, gi.compute_slices) if not full else (0,)
        name = gi.name if full else f"MIG {size}c.{gi.short_name}"
        sm = gi.sm if full else gi.sm * size // gi.compute_slices
        profiles.append(CiProfileSpec(_CI_ID[size], name, size, starts, len(starts), sm, full))
    return tuple(profiles)


A30 = GpuModel(
    key="A30",
    name="NVIDIA A30",
    memory_mib=24576,
    bar1_mib=16383,
    power_cap_w=165,
    driver="545.23.08",
    cuda="12.3",
    style="545",
    pci_device_id="0x20B710DE",
    gi_profiles=(
        _gi(14, "1g.6gb", 1, 1, (0, 1, 2, 3), 4, 5.81, 5952, (14, 1, 0, 1, 0, 0)),
        _gi(21, "1g.6gb+me", 1, 1, (0, 1, 2, 3), 1, 5.81, 5952, (14, 1, 0, 1, 1, 1)),
        _gi(5, "2g.12gb", 2, 2, (0, 2), 2, 11.69, 11968, (28, 2, 0, 2, 0, 0)),
        _gi(6, "2g.12gb+me", 2, 2, (0, 2), 1, 11.69, 11968, (28, 2, 0, 2, 1, 1)),
        _gi(0, "4g.24gb", 4, 4, (0,), 1, 23.44, 24000, (56, 4, 0, 4, 1, 1)),
    ),
    # The seed's node: its GPU UUIDs, bus ids and the MIG device UUIDs it recorded.
    uuids=(
        "GPU-d8430827-89da-89df-1d70-bde0c9883859",
        "GPU-d1ee693e-571b-7664-f22b-1312585630d0",
        "GPU-fc7c8f73-47c4-7b21-c9da-858462fa0433",
        "GPU-bef3638b-2c97-ea4b-83d9-b1a6b7d2fc29",
    ),
    bus_ids=("00000000:17:00.0", "00000000:65:00.0", "00000000:CA:00.0", "00000000:E3:00.0"),
    mig_uuids={
        (0, 1, 0): "MIG-89b757f7-3c4c-5b1c-9476-a11b14aa9308",
        (0, 2, 0): "MIG-6df26cf8-a984-58d3-978e-acb0c808d513",
        (0, 1, 1): "MIG-bdf043cc-8668-599c-95b0-5b640d416440",
        (0, 2, 1): "MIG-6f79e1f8-f1ed-5121-976a-4ff3f0df8634",
    },
)

H100 = GpuModel(
    key="H100-80GB",
    name="NVIDIA H100 80GB HBM3",
    memory_mib=81559,
    bar1_mib=65535,
    power_cap_w=700,
    driver="580.159.04",
    cuda="13.0",
    style="580",
    pci_device_id="0x233010DE",
    gi_profiles=(
        _gi(19, "1g.10gb", 1, 1, (0, 1, 2, 3, 4, 5, 6), 7, 9.75, 9984, (16, 1, 0, 1, 1, 0)),
        _gi(20, "1g.10gb+me", 1, 1, (0, 1, 2, 3, 4, 5, 6), 1, 9.75, 9984, (16, 1, 0, 1, 1, 1)),
        _gi(15, "1g.20gb", 1, 2, (0, 2, 4, 6), 4, 19.62, 20096, (26, 1, 0, 1, 1, 0)),
        _gi(14, "2g.20gb", 2, 2, (0, 2, 4), 3, 19.62, 20096, (32, 2, 0, 2, 2, 0)),
        _gi(9, "3g.40gb", 3, 4, (0, 4), 2, 39.50, 40448, (60, 3, 0, 3, 3, 0)),
        _gi(5, "4g.40gb", 4, 4, (0,), 1, 39.50, 40448, (64, 4, 0, 4, 4, 0)),
        _gi(0, "7g.80gb", 7, 8, (0,), 1, 79.25, 81152, (132, 7, 0, 8, 7, 1)),
    ),
    uuids=("GPU-5a696190-c88f-aec8-e5cd-cd9cb15d9dda",),
    bus_ids=("00000000:00:06.0",),
)

A100_40GB = GpuModel(
    key="A100-40GB",
    name="NVIDIA A100-SXM4-40GB",
    memory_mib=40960,
    bar1_mib=65535,
    power_cap_w=400,
    driver="545.23.08",
    cuda="12.3",
    style="545",
    pci_device_id="0x20B010DE",
    gi_profiles=(
        _gi(19, "1g.5gb", 1, 1, (0, 1, 2, 3, 4, 5, 6), 7, 4.75, 4864, (14, 0, 0, 1, 0, 0)),
        _gi(20, "1g.5gb+me", 1, 1, (0, 1, 2, 3, 4, 5, 6), 1, 4.75, 4864, (14, 1, 0, 1, 1, 1)),
        _gi(14, "2g.10gb", 2, 2, (0, 2, 4), 3, 9.75, 9984, (28, 1, 0, 2, 0, 0)),
        _gi(9, "3g.20gb", 3, 4, (0, 4), 2, 19.62, 20096, (42, 2, 0, 3, 0, 0)),
        _gi(5, "4g.20gb", 4, 4, (0,), 1, 19.62, 20096, (56, 2, 0, 4, 0, 0)),
        _gi(0, "7g.40gb", 7, 8, (0,), 1, 39.50, 40448, (98, 5, 0, 7, 1, 1)),
    ),
)

MODELS: Mapping[str, GpuModel] = {model.key: model for model in (A30, A100_40GB, H100)}
_ALIASES = {"A30-24GB": "A30", "H100": "H100-80GB", "A100": "A100-40GB", "A100-SXM4-40GB": "A100-40GB"}


def model_named(name: str) -> GpuModel:
    """The model for ``name`` (``"A30"``, ``"H100-80GB"``, ``"A100-40GB"``, case-insensitive)."""
    key = name.upper()
    key = _ALIASES.get(key, key)
    if key not in MODELS:
        raise ValueError(f"unknown GPU model {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[key]
