"""The GPU models the simulator knows, as data.

Each :class:`GpuModel` says what it was built from (``recorded``) and what no recording shows (``inferred``);
``smimig --simulate list`` prints both. Sources: the A30 from the seed walk-through (driver 545); the H100 80GB
and H200 141GB from driver 580 captures (``fixtures/h100-80gb-driver580``, ``fixtures/h200-141gb-driver580``);
the A100 80GB PCIe from a driver 515 walk-through (``fixtures/a100-80gb-pcie-driver515``); the A100 40GB from
``realdata/a100-40gb-figures.md`` (NVIDIA's published MIG tables agree); the GH200, the B200 (first three rows
only) and the RTX PRO 6000 Blackwell from ``-lgip`` tables (``fixtures/more-profile-tables``), the RTX also
from two plain tables. Names of profiles no recording shows come from NVIDIA's mig-parted default config.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import attrs

from smimig._repr import AttrsRepr
from smimig.geometry import ProfileGeometry, ProfileName, short_profile_name, slice_count

__all__ = [
    "MODELS",
    "CiProfileSpec",
    "GiProfile",
    "GpuModel",
    "ci_profiles_for",
    "describe_models",
    "mib_of",
    "model_named",
]


@attrs.frozen(repr=False)
class GiProfile(AttrsRepr):
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
        """The name without ``MIG``: ``"2g.12gb"``."""
        return short_profile_name(self.name)

    @property
    def media(self) -> bool:
        """Owns the GPU's media engines (OFA): at most one such GI at a time (inferred from the limits)."""
        return self.ofa > 0

    @property
    def geometry(self) -> ProfileGeometry:
        """Its placements and limits, as the placement rules read them."""
        return ProfileGeometry(self.id, self.short_name, self.size, self.starts, self.instances, self.media)


@attrs.frozen(repr=False)
class CiProfileSpec(AttrsRepr):
    """A compute instance profile inside a GI profile."""

    id: int
    name: str
    slices: int
    starts: tuple[int, ...]
    instances: int
    sm: int
    is_default: bool

    @property
    def geometry(self) -> ProfileGeometry:
        """Its placements inside its GI, in compute slices, as the placement rules read them."""
        return ProfileGeometry(self.id, short_profile_name(self.name), self.slices, self.starts, self.instances)


@attrs.frozen(repr=False)
class GpuModel(AttrsRepr):
    """A MIG-capable GPU model and what its plain ``nvidia-smi`` table shows."""

    key: str
    name: str  # as -L and --query-gpu print it (the table truncates long names)
    memory_mib: int
    bar1_mib: int  # BAR1 total of a MIG device (A30 seed: 16383; inferred for the others)
    power_cap_w: int
    driver: str
    cuda: str
    style: str  # "545" or "580": which driver's column widths the renderers use
    pci_device_id: str  # as --query-gpu=pci.device_id prints it (NVIDIA's ids, as mig-parted's filters use)
    pci_subsystem_id: str  # as --query-gpu=pci.sub_device_id prints it (mig-parted's 0xDEVICE:0xSUBSYSTEM filters)
    gi_profiles: tuple[GiProfile, ...]
    uuids: tuple[str, ...] = ()  # GPU UUIDs from recordings, used for the first GPUs
    bus_ids: tuple[str, ...] = ()
    mig_uuids: Mapping[tuple[int, int, int], str] = attrs.field(factory=dict)  # (gpu, gi, ci) -> UUID
    aliases: tuple[str, ...] = ()  # other names model_named accepts (case-insensitive, as the key)
    recorded: tuple[str, ...] = ()  # what comes from real recordings
    inferred: tuple[str, ...] = ()  # what no recording shows: the simulator's guesses
    # The plain table's fixed figures (recorded where a table of the model was recorded):
    fan: str = "N/A"
    perf: str = "P0"
    persistence: bool = True
    ecc: bool = True  # ECC enabled: "Volatile Uncorr. ECC" shows a count; else "Off" (and "N/A" per MIG device)
    idle_memory_used_mib: int = 4  # a GPU in MIG mode off with no process
    gi_memory_used_mib: int = 25  # what each GPU instance uses with no process on it

    def gi_profile(self, profile_id: int) -> GiProfile:
        for profile in self.gi_profiles:
            if profile.id == profile_id:
                return profile
        raise KeyError(profile_id)

    @property
    def slices(self) -> int:
        """Memory slices, as placements count them: 8 on most, 4 on the A30, 12 on the RTX PRO 6000's grid."""
        return slice_count([profile.geometry for profile in self.gi_profiles])


def mib_of(gib: float) -> int:
    """The MiB nvidia-smi prints for a MIG device of ``gib`` GiB (``-lgip``'s two decimals).

    GiB x 1024 to the nearest 32 MiB: every recording that shows both agrees (A30 5.81 -> 5952, 11.69 -> 11968,
    23.44 -> 24000; A100 80GB 39.25 -> 40192; RTX PRO 6000 23.62 -> 24192). Used where memory_mib is inferred.
    """
    return round(gib * 1024 / 32) * 32


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
        ProfileName.parse(short).full,
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
# NVML's COMPUTE_INSTANCE_PROFILE_1_SLICE_REV1: the one compute instance of a GPU instance with one compute
# slice over two memory slices (GH200 1g.24gb, H100 1g.20gb, H200 1g.35gb, B200 1g.45gb). The GH200's id 7 is
# the issue's (fixtures/synthetic/gh200-lcip-ci-profile-7.txt); the others' are inferred from NVML's numbering.
_CI_ID_ONE_SLICE_OVER_TWO = 7


def _ci_starts(slices: int, gi_slices: int) -> tuple[int, ...]:
    # 1c and 2c align to their size; 3c and 4c start at 0 or 4 (as 3g/4g GIs do); inferred from the A100.
    step = slices if slices <= 2 else 4
    return tuple(start for start in range(0, gi_slices, step) if start + slices <= gi_slices)


def ci_profiles_for(gi: GiProfile) -> tuple[CiProfileSpec, ...]:
    """The compute instance profiles a GI of this profile offers (seed A30 and A100 -lcip agree).

    A smaller one is named after the GI's short name with its suffix: ``MIG 1c.2g.48gb+gfx`` in a
    ``2g.48gb+gfx`` GI, ``MIG 1c.3g.40gb`` in a ``3g.40gb`` one; the full-size one has the GI's own name.
    """
    sizes = [size for size in (1, 2, 3, 4, 7) if size < gi.compute_slices] + [gi.compute_slices]
    gi_name = ProfileName.parse(gi.name)
    profiles = []
    for size in sizes:
        full = size == gi.compute_slices
        starts = _ci_starts(size, gi.compute_slices) if not full else (0,)
        name = gi_name.compute_instance(size).full
        sm = gi.sm if full else gi.sm * size // gi.compute_slices
        ci_id = _CI_ID_ONE_SLICE_OVER_TWO if gi.compute_slices == 1 and gi.size == 2 else _CI_ID[size]
        profiles.append(CiProfileSpec(ci_id, name, size, starts, len(starts), sm, full))
    return tuple(profiles)


# Placements shared by the A100, H100, H200, GH200 and B200 (8 memory slices, recorded on the A100 and H100/H200).
_ONE = (0, 1, 2, 3, 4, 5, 6)
_TWO = (0, 2, 4, 6)  # 1g.20gb-style profiles (one compute slice, two memory slices)
_TWO_G = (0, 2, 4)
_FOUR = (0, 4)


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
    pci_subsystem_id="0x153210DE",
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
    aliases=("A30-24GB",),
    recorded=(
        "the seed walk-through on driver 545 (fixtures/a30-driver545): -L, -lgip, -lgipp, -lgi, -lcip, -lci, "
        "the table and its MIG devices box, the create and mode messages, UUIDs and bus ids of four GPUs",
    ),
    inferred=(
        "the PCI subsystem id (as NVIDIA's own board is commonly reported; no recording shows it)",
        "compute instance profiles inside 1g.6gb and 4g.24gb GIs (the seed shows 2g.12gb ones only)",
        "the Processes box with processes in it",
        "UUIDs and bus ids of GPUs beyond the seed's four",
    ),
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
    pci_subsystem_id="0x16C110DE",
    gi_profiles=(
        _gi(19, "1g.10gb", 1, 1, _ONE, 7, 9.75, 9984, (16, 1, 0, 1, 1, 0)),
        _gi(20, "1g.10gb+me", 1, 1, _ONE, 1, 9.75, 9984, (16, 1, 0, 1, 1, 1)),
        _gi(15, "1g.20gb", 1, 2, _TWO, 4, 19.62, 20096, (26, 1, 0, 1, 1, 0)),
        _gi(14, "2g.20gb", 2, 2, _TWO_G, 3, 19.62, 20096, (32, 2, 0, 2, 2, 0)),
        _gi(9, "3g.40gb", 3, 4, _FOUR, 2, 39.50, 40448, (60, 3, 0, 3, 3, 0)),
        _gi(5, "4g.40gb", 4, 4, (0,), 1, 39.50, 40448, (64, 4, 0, 4, 4, 0)),
        _gi(0, "7g.80gb", 7, 8, (0,), 1, 79.25, 81152, (132, 7, 0, 8, 7, 1)),
    ),
    uuids=("GPU-5a696190-c88f-aec8-e5cd-cd9cb15d9dda",),
    bus_ids=("00000000:00:06.0",),
    aliases=("H100", "H100-SXM5-80GB"),
    recorded=(
        "driver 580 captures with MIG off (fixtures/h100-80gb-driver580): -L, -lgip, -lgipp, --query-gpu, the "
        "plain table (0 MiB used), the listing messages and exit codes, the GPU's UUID and bus id",
        "the PCI subsystem id, 0x16C110DE (its nvidia-smi -q)",
    ),
    inferred=(
        "MIG device memory (memory_mib: GiB x 1024, see mib_of) and BAR1 (65535 MiB)",
        "everything in MIG mode: -lgi, -lci, -lcip with instances, the MIG devices box, the table's memory",
        "compute instance profiles and placements",
    ),
    idle_memory_used_mib=0,
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
    pci_subsystem_id="0x134F10DE",
    gi_profiles=(
        _gi(19, "1g.5gb", 1, 1, _ONE, 7, 4.75, 4864, (14, 0, 0, 1, 0, 0)),
        _gi(20, "1g.5gb+me", 1, 1, _ONE, 1, 4.75, 4864, (14, 1, 0, 1, 1, 1)),
        _gi(15, "1g.10gb", 1, 2, _TWO, 4, 9.75, 9984, (14, 1, 0, 1, 0, 0)),
        _gi(14, "2g.10gb", 2, 2, _TWO_G, 3, 9.75, 9984, (28, 1, 0, 2, 0, 0)),
        _gi(9, "3g.20gb", 3, 4, _FOUR, 2, 19.62, 20096, (42, 2, 0, 3, 0, 0)),
        _gi(5, "4g.20gb", 4, 4, (0,), 1, 19.62, 20096, (56, 2, 0, 4, 0, 0)),
        _gi(0, "7g.40gb", 7, 8, (0,), 1, 39.50, 40448, (98, 5, 0, 7, 1, 1)),
    ),
    aliases=("A100", "A100-SXM4-40GB"),
    recorded=(
        "profile figures and placements read off -lgip (driver 510) and -lgipp on an A100-PCIE-40GB "
        "(realdata/a100-40gb-figures.md): figures, not verbatim text",
    ),
    inferred=(
        "the PCI subsystem id (as NVIDIA's own board is commonly reported; no recording shows it)",
        "every line of text: the driver 545 layout, driver 545.23.08 and CUDA 12.3",
        "1g.5gb+me placements {0,...,6}:1 (the -lgipp recording predates the profile)",
        "the 1g.10gb profile (id 15, 4 instances, placements {0,2,4,6}:2, figures as 2g.10gb's memory with one "
        "compute slice): newer drivers than the recorded 510 list it, and NVIDIA's default mig-parted config asks "
        "A100-40GB (0x20B010DE) for all-1g.10gb with 4 of them",
        "MIG device memory (mib_of), BAR1, power cap 400 W, UUIDs and bus ids",
        "compute instance profiles and placements",
    ),
)

H200 = GpuModel(
    key="H200-141GB",
    name="NVIDIA H200",
    memory_mib=143771,
    bar1_mib=65535,
    power_cap_w=700,
    driver="580.159.04",
    cuda="13.0",
    style="580",
    pci_device_id="0x233510DE",
    pci_subsystem_id="0x18BE10DE",
    gi_profiles=(
        _gi(19, "1g.18gb", 1, 1, _ONE, 7, 16.00, mib_of(16.00), (16, 1, 0, 1, 1, 0)),
        _gi(20, "1g.18gb+me", 1, 1, _ONE, 1, 16.00, mib_of(16.00), (16, 1, 0, 1, 1, 1)),
        _gi(15, "1g.35gb", 1, 2, _TWO, 4, 32.50, mib_of(32.50), (26, 1, 0, 1, 1, 0)),
        _gi(14, "2g.35gb", 2, 2, _TWO_G, 3, 32.50, mib_of(32.50), (32, 2, 0, 2, 2, 0)),
        _gi(9, "3g.71gb", 3, 4, _FOUR, 2, 69.75, mib_of(69.75), (60, 3, 0, 3, 3, 0)),
        _gi(5, "4g.71gb", 4, 4, (0,), 1, 69.75, mib_of(69.75), (64, 4, 0, 4, 4, 0)),
        _gi(0, "7g.141gb", 7, 8, (0,), 1, 140.00, mib_of(140.00), (132, 7, 0, 8, 7, 1)),
    ),
    uuids=("GPU-84135ed2-9dce-b2e5-bcd1-eebe17e77a17",),
    bus_ids=("00000000:00:06.0",),
    aliases=("H200", "H200-SXM-141GB"),
    recorded=(
        "driver 580 captures with MIG off (fixtures/h200-141gb-driver580): -L, -lgip (profiles), -lgipp "
        "(placements), -lci, -lcip, --query-gpu, the plain table (143771 MiB, 700 W), UUID and bus id",
    ),
    inferred=(
        "the PCI subsystem id (as NVIDIA's own board is commonly reported; no recording shows it)",
        "MIG device memory (memory_mib: GiB x 1024, see mib_of): 16384, 33280, 71424, 143360 MiB",
        "BAR1 (65535 MiB)",
        "everything in MIG mode: -lgi, -lci, -lcip with instances, the MIG devices box, the table's memory",
        "compute instance profiles and placements",
    ),
    idle_memory_used_mib=0,
)

GH200 = GpuModel(
    key="GH200-480GB",
    name="NVIDIA GH200 480GB",
    memory_mib=97871,
    bar1_mib=65535,
    power_cap_w=900,
    driver="550.54.15",
    cuda="12.4",
    style="545",
    pci_device_id="0x234210DE",
    pci_subsystem_id="0x16EB10DE",
    gi_profiles=(
        _gi(19, "1g.12gb", 1, 1, _ONE, 7, 11.00, mib_of(11.00), (16, 1, 0, 1, 1, 0)),
        _gi(20, "1g.12gb+me", 1, 1, _ONE, 1, 11.00, mib_of(11.00), (16, 1, 0, 1, 1, 1)),
        _gi(15, "1g.24gb", 1, 2, _TWO, 4, 23.00, mib_of(23.00), (26, 1, 0, 1, 1, 0)),
        _gi(14, "2g.24gb", 2, 2, _TWO_G, 3, 23.00, mib_of(23.00), (32, 2, 0, 2, 2, 0)),
        _gi(9, "3g.48gb", 3, 4, _FOUR, 2, 46.50, mib_of(46.50), (60, 3, 0, 3, 3, 0)),
        _gi(5, "4g.48gb", 4, 4, (0,), 1, 46.50, mib_of(46.50), (64, 4, 0, 4, 4, 0)),
        _gi(0, "7g.96gb", 7, 8, (0,), 1, 93.00, mib_of(93.00), (132, 7, 0, 8, 7, 1)),
    ),
    aliases=("GH200", "GH200-96GB"),
    recorded=(
        "-lgip on driver 550.54.15 (more-profile-tables/gh200-480gb-driver550-lgip.txt): every profile's name, "
        "id, count, memory, SMs and engines; its 79 columns are driver 545's widths",
    ),
    inferred=(
        "the PCI subsystem id (as NVIDIA's own board is commonly reported; no recording shows it)",
        "placements: the H100/H200 ones (same profile ids 19/20/15/14/9/5/0 and counts)",
        "the rest of driver 550's text laid out as driver 545's (only its -lgip is recorded)",
        "name as printed, total memory 97871 MiB, power cap 900 W, CUDA 12.4, BAR1",
        "MIG device memory (mib_of), compute instance profiles and placements, UUIDs and bus ids",
    ),
    idle_memory_used_mib=0,
)

B200 = GpuModel(
    key="B200",
    name="NVIDIA B200",
    memory_mib=183359,
    bar1_mib=65535,
    power_cap_w=1000,
    driver="580.159.04",
    cuda="13.0",
    style="580",
    pci_device_id="0x290110DE",
    pci_subsystem_id="0x199910DE",
    gi_profiles=(
        # Recorded rows (b200-lgip-partial.txt):
        _gi(19, "1g.23gb", 1, 1, _ONE, 7, 22.00, mib_of(22.00), (18, 1, 0, 2, 1, 0)),
        _gi(20, "1g.23gb+me", 1, 1, _ONE, 1, 22.00, mib_of(22.00), (18, 1, 0, 2, 1, 1)),
        _gi(15, "1g.45gb", 1, 2, _TWO, 4, 44.25, mib_of(44.25), (30, 1, 0, 2, 1, 0)),
        # Inferred rows: names from mig-parted's B200 configs, ids/counts/placements as the H100/H200.
        _gi(14, "2g.45gb", 2, 2, _TWO_G, 3, 44.25, mib_of(44.25), (36, 2, 0, 4, 2, 0)),
        _gi(9, "3g.90gb", 3, 4, _FOUR, 2, 89.00, mib_of(89.00), (68, 3, 0, 6, 3, 0)),
        _gi(5, "4g.90gb", 4, 4, (0,), 1, 89.00, mib_of(89.00), (72, 4, 0, 8, 4, 0)),
        _gi(0, "7g.180gb", 7, 8, (0,), 1, 178.00, mib_of(178.00), (148, 7, 0, 16, 7, 1)),
    ),
    aliases=("B200-180GB",),
    recorded=(
        "-lgip rows 19 (1g.23gb), 20 (1g.23gb+me) and 15 (1g.45gb): ids, counts, memory, SMs and engines "
        "(more-profile-tables/b200-lgip-partial.txt; driver not shown)",
        "profile names 2g.45gb, 3g.90gb, 4g.90gb, 7g.180gb and their counts 3, 2, 1, 1 "
        "(NVIDIA mig-parted's default config, device-filter 0x290110DE)",
    ),
    inferred=(
        "the PCI subsystem id (as NVIDIA's own board is commonly reported; no recording shows it)",
        "rows 14 (2g.45gb), 9 (3g.90gb), 5 (4g.90gb), 0 (7g.180gb): their ids as on the H100/H200; memory "
        "44.25/89.00/89.00/178.00 GiB; SMs 36/68/72/148; CE 2 per compute slice (16 for 7g); DEC, JPEG as slices",
        "every placement (the H100/H200 scheme, recorded rows included)",
        "driver 580.159.04 and CUDA 13.0 with the driver 580 layout (the partial -lgip is 79 columns wide, "
        "as drivers before 580 print it)",
        "total memory 183359 MiB, power cap 1000 W, BAR1, MIG device memory (mib_of)",
        "compute instance profiles and placements, UUIDs and bus ids",
    ),
    idle_memory_used_mib=0,
)


def _rtx_profiles(unit: int) -> tuple[GiProfile, ...]:
    """The RTX PRO 6000 Blackwell's 11 profiles (recorded); placements on a grid of ``4 * unit`` (inferred)."""
    one, two, four = (0, unit, 2 * unit, 3 * unit), (0, 2 * unit), (0,)
    small, medium, large = mib_of(23.62), mib_of(47.38), mib_of(95.00)
    return (
        _gi(14, "1g.24gb", 1, unit, one, 4, 23.62, small, (46, 1, 1, 1, 1, 0)),
        _gi(21, "1g.24gb+me", 1, unit, one, 1, 23.62, small, (46, 1, 1, 1, 1, 1)),
        _gi(47, "1g.24gb+gfx", 1, unit, one, 4, 23.62, small, (46, 1, 1, 1, 1, 0)),
        _gi(65, "1g.24gb+me.all", 1, unit, one, 1, 23.62, small, (46, 4, 4, 1, 4, 1)),
        _gi(67, "1g.24gb-me", 1, unit, one, 4, 23.62, small, (46, 0, 0, 1, 0, 0)),
        _gi(5, "2g.48gb", 2, 2 * unit, two, 2, 47.38, medium, (94, 2, 2, 2, 2, 0)),
        _gi(35, "2g.48gb+gfx", 2, 2 * unit, two, 2, 47.38, medium, (94, 2, 2, 2, 2, 0)),
        _gi(64, "2g.48gb+me.all", 2, 2 * unit, two, 1, 47.38, medium, (94, 4, 4, 2, 4, 1)),
        _gi(66, "2g.48gb-me", 2, 2 * unit, two, 2, 47.38, medium, (94, 0, 0, 2, 0, 0)),
        _gi(0, "4g.96gb", 4, 4 * unit, four, 1, 95.00, large, (188, 4, 4, 4, 4, 1)),
        _gi(32, "4g.96gb+gfx", 4, 4 * unit, four, 1, 95.00, large, (188, 4, 4, 4, 4, 1)),
    )


_RTX_RECORDED = (
    "-lgip on driver 580 (more-profile-tables/rtx-pro-6000-blackwell-driver580-lgip.txt): the 11 profiles "
    "(+me, +gfx, +me.all, -me forms) with ids, counts, memory, SMs and engines",
    "the plain table on driver 580.105.08 with MIG on, with no MIG device and with one (GI 3, CI 0, 1g): the "
    "truncated name, fan 30%, P8, 300 W, ECC Off, 97887 MiB (N/A with a MIG device), bus id, 24192 MiB and "
    "BAR1 8327 MiB of a 1g MIG device, 64 MiB used per GPU instance, the 'Shared' headings",
)
_RTX_INFERRED = (
    "the PCI subsystem id (as NVIDIA's own board is commonly reported; no recording shows it)",
    "MIG device memory of 2g and 4g GIs (mib_of) and their BAR1 (8327 MiB, as the 1g's)",
    "compute instance profiles and placements (e.g. 1c.2g.48gb+gfx; placements in compute slices)",
    "media: +me, +me.all and 4g GIs each own the OFA, one at a time; nothing else +me.all excludes is modelled",
    "GPU UUID, bus ids of GPUs after the first",
)

RTX_PRO_6000 = GpuModel(
    key="RTX-PRO-6000",
    name="NVIDIA RTX PRO 6000 Blackwell Server Edition",
    memory_mib=97887,
    bar1_mib=8327,
    power_cap_w=300,
    driver="580.105.08",
    cuda="13.0",
    style="580",
    pci_device_id="0x2BB510DE",
    pci_subsystem_id="0x204E10DE",
    gi_profiles=_rtx_profiles(3),
    bus_ids=("00000000:17:00.0",),
    aliases=("RTX-PRO-6000-BLACKWELL", "RTX-PRO-6000-SE", "RTXPRO6000", "RTX-PRO-6000-GRID12"),
    recorded=_RTX_RECORDED,
    inferred=(
        "placements on a grid of 12, as newer drivers print them: {0,3,6,9}:3, {0,6}:6, {0}:12",
        *_RTX_INFERRED,
    ),
    fan="30%",
    perf="P8",
    ecc=False,
    idle_memory_used_mib=0,
    gi_memory_used_mib=64,
)

RTX_PRO_6000_GRID4 = attrs.evolve(
    RTX_PRO_6000,
    key="RTX-PRO-6000-GRID4",
    driver="580.65.06",
    gi_profiles=_rtx_profiles(1),
    aliases=("RTX-PRO-6000-OLD",),
    inferred=(
        "placements on a grid of 4, as older drivers print them: {0,1,2,3}:1, {0,2}:2, {0}:4",
        "driver 580.65.06: which driver moved to the grid of 12 is not recorded",
        *_RTX_INFERRED,
    ),
)

A100_80GB = GpuModel(
    key="A100-80GB",
    name="NVIDIA A100 80GB PCIe",
    memory_mib=81920,
    bar1_mib=65535,
    power_cap_w=300,
    driver="515.86.01",
    cuda="11.7",
    style="545",
    pci_device_id="0x20B510DE",
    pci_subsystem_id="0x153310DE",
    gi_profiles=(
        _gi(19, "1g.10gb", 1, 1, _ONE, 7, 9.50, mib_of(9.50), (14, 0, 0, 1, 0, 0)),
        _gi(20, "1g.10gb+me", 1, 1, _ONE, 1, 9.50, mib_of(9.50), (14, 1, 0, 1, 1, 1)),
        _gi(14, "2g.20gb", 2, 2, _TWO_G, 3, 19.50, mib_of(19.50), (28, 1, 0, 2, 0, 0)),
        _gi(9, "3g.40gb", 3, 4, _FOUR, 2, 39.25, 40192, (42, 2, 0, 3, 0, 0)),
        _gi(5, "4g.40gb", 4, 4, (0,), 1, 39.25, 40192, (56, 2, 0, 4, 0, 0)),
        _gi(0, "7g.80gb", 7, 8, (0,), 1, 79.00, mib_of(79.00), (98, 5, 0, 7, 1, 1)),
    ),
    bus_ids=("00000001:00:00.0",),
    aliases=("A100-80GB-PCIE", "A100-PCIE-80GB"),
    recorded=(
        "the driver 515 walk-through (fixtures/a100-80gb-pcie-driver515): -lgip, -cgi, -lgi (3g.40gb GIs 1 "
        "and 2 at 4:4 and 0:4), -lcip, -cci, -lci; its tables: name, 81920 MiB, 300 W, persistence Off, bus id, "
        "a 3g.40gb MIG device of 40192 MiB with BAR1 65535 MiB, 19 MiB used per GPU instance; CUDA 11.7",
    ),
    inferred=(
        "placements: the A100 40GB's ({0..6}:1, {0,2,4}:2, {0,4}:4, {0}:4, {0}:8); the recorded 4:4, 0:4 agree",
        "the plain table in the driver 545 layout (driver 515's is 79 columns wide and not reproduced)",
        "MIG device memory of profiles other than 3g/4g (mib_of), compute instance profiles of other GIs",
        "-L, GPU UUID",
    ),
    persistence=False,
    idle_memory_used_mib=0,
    gi_memory_used_mib=19,
)

MODELS: Mapping[str, GpuModel] = {
    model.key: model for model in (A30, A100_40GB, A100_80GB, H100, H200, GH200, B200, RTX_PRO_6000, RTX_PRO_6000_GRID4)
}
_ALIASES = {alias.upper(): model.key for model in MODELS.values() for alias in model.aliases}


def model_named(name: str) -> GpuModel:
    """The model for ``name``: a key (``"A30"``, ``"H200-141GB"`` …) or an alias (``"H200"``), any case."""
    key = name.upper()
    key = _ALIASES.get(key, key)
    if key not in MODELS:
        raise ValueError(f"unknown GPU model {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[key]


def describe_models() -> str:
    """Each model: key, aliases, name, PCI device id, driver, and what is inferred (``--simulate list``)."""
    lines = []
    for key in sorted(MODELS):
        model = MODELS[key]
        aliases = f" (also {', '.join(model.aliases)})" if model.aliases else ""
        lines.append(f"{key}{aliases}")
        lines.append(
            f"    {model.name}, PCI id {model.pci_device_id}, {model.slices} slices, "
            f"driver {model.driver} (CUDA {model.cuda})"
        )
        lines.extend(
            textwrap.wrap(
                "inferred: " + "; ".join(model.inferred),
                width=110,
                initial_indent="    ",
                subsequent_indent="      ",
            )
        )
    return "\n".join(lines) + "\n"
