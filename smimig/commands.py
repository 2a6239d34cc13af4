"""The command registry: every listing smimig reads, with its argv, its parser, its "nothing found" answers and
the drivers its parser was checked against (jc keeps the same metadata beside each parser).

``Smi`` builds each listing's argv here and reads it with :meth:`Smi.read <smimig.client.Smi.read>`; doctor's
self-check runs every entry; the benchmarks time every entry. The parsers stay pure functions of text in
:mod:`smimig.parsers`; this module says which command each one reads.

Notes the table cannot hold: ``-L`` takes no ``-i`` (driver 580 answers ``-L -i 9`` with "ERROR: Option -i is
not valid for this command", exit 2), so its GPU selection is made on the parsed rows. Driver 580 lists the GI
profiles and placements of a GPU in MIG mode off too, so ``-lgip`` says "No MIG-enabled devices found." only
when no GPU can list any. "No GPU instances found: Not Found" may come with exit code 6 (NVML's NOT_FOUND):
still an empty listing. Plain ``nvidia-smi`` has no "nothing found" answer of its own: the "MIG devices:" box's
"No MIG devices found" is a row its parser reads. A recording names the machine and driver that printed it
(fixtures/README.md; synthetic fixtures do not count); the MIG mode query's recordings ask for other columns
than smimig does.

The registry, as :func:`describe` prints it::

    gpus: nvidia-smi -L
        parser: parse_gpu_list
        GPU selection: made on the parsed rows (the command line takes no -i)
        nothing found: -
        verified on: a30-driver545, h100-80gb-driver580, h200-141gb-driver580
    mig mode: nvidia-smi [-i N] --query-gpu=index,pci.bus_id,mig.mode.current,mig.mode.pending --format=csv,noheader
        parser: parse_mig_mode
        nothing found: -
        verified on: h100-80gb-driver580, h200-141gb-driver580
    PCI device ids: nvidia-smi [-i N] --query-gpu=index,pci.device_id --format=csv,noheader
        parser: parse_pci_device_ids
        nothing found: -
        verified on: no recording (synthetic fixtures only)
        doctor's self-check: left out
    PCI ids: nvidia-smi [-i N] --query-gpu=index,pci.device_id,pci.sub_device_id --format=csv,noheader
        parser: parse_pci_ids
        nothing found: -
        verified on: no recording (synthetic fixtures only)
        doctor's self-check: left out
    GPU instance profiles: nvidia-smi mig [-i N] -lgip
        parser: parse_gi_profiles
        nothing found: No MIG-enabled devices found.
        verified on: a100-80gb-pcie-driver515, a30-driver545, gh200-480gb-driver550, h100-80gb-driver580,
            h200-141gb-driver580, rtx-pro-6000-blackwell-driver580
    GPU instance placements: nvidia-smi mig [-i N] -lgipp
        parser: parse_gi_placements
        nothing found: No MIG-enabled devices found.
        verified on: a30-driver545, h100-80gb-driver580, h200-141gb-driver580
    GPU instances: nvidia-smi mig [-i N] -lgi
        parser: parse_gis
        nothing found: No MIG-enabled devices found. | No GPU instances found: Not Found
        verified on: a100-80gb-pcie-driver515, a30-driver545, h100-80gb-driver580
    compute instance profiles: nvidia-smi mig [-i N] [-gi G] -lcip
        parser: parse_ci_profiles
        nothing found: No MIG-enabled devices found. | No GPU instances found: Not Found
        verified on: a100-80gb-pcie-driver515, a30-driver545, h100-80gb-driver580, h200-141gb-driver580
    compute instance placements: nvidia-smi mig [-i N] [-gi G] -lcipp
        parser: parse_ci_placements
        nothing found: No MIG-enabled devices found. | No GPU instances found: Not Found
        verified on: no recording (synthetic fixtures only)
    compute instances: nvidia-smi mig [-i N] [-gi G] -lci
        parser: parse_cis
        nothing found: No MIG-enabled devices found. | No GPU instances found: Not Found | No compute instances
            found: Not Found
        verified on: a100-80gb-pcie-driver515, a30-driver545, h100-80gb-driver580, h200-141gb-driver580
    MIG devices table: nvidia-smi [-i N]
        parser: parse_mig_devices
        nothing found: -
        verified on: a100-80gb-pcie-driver515, a30-driver545, h100-80gb-driver580, h200-141gb-driver580,
            rtx-pro-6000-blackwell-driver580
    processes table: nvidia-smi [-i N]
        parser: parse_processes
        nothing found: -
        verified on: a100-80gb-pcie-driver515, h100-80gb-driver580, h200-141gb-driver580,
            rtx-pro-6000-blackwell-driver580

>>> CIS.argv(gpu=[0], gi=[1, 2])
['mig', '-i', '0', '-gi', '1,2', '-lci']
>>> GPUS.argv(gpu=[1])
['-L']
>>> CIS.usage
'nvidia-smi mig [-i N] [-gi G] -lci'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable, Generic, Literal, TypeVar

import attrs

from smimig import parsers
from smimig._repr import AttrsRepr
from smimig.models import (
    ComputeInstance,
    ComputeInstancePlacements,
    ComputeInstanceProfile,
    Gpu,
    GpuInstance,
    GpuInstancePlacements,
    GpuInstanceProfile,
    GpuProcess,
    MigDeviceUsage,
    MigMode,
    PciDeviceId,
)

__all__ = [
    "CIS",
    "CI_PLACEMENTS",
    "CI_PROFILES",
    "COMMANDS",
    "GIS",
    "GI_PLACEMENTS",
    "GI_PROFILES",
    "GPUS",
    "MIG_DEVICES",
    "MIG_MODE",
    "PCI_DEVICE_IDS",
    "PCI_IDS",
    "PROCESSES",
    "Command",
    "Selector",
    "describe",
]

T = TypeVar("T")

Selector = Literal["-i", "-gi"]
"""An option that narrows a listing: ``-i`` GPUs, ``-gi`` GPU instances."""

_PLACEHOLDERS: dict[Selector, str] = {"-i": "N", "-gi": "G"}


def _option(option: Selector, ids: Sequence[int] | None) -> list[str]:
    return [] if ids is None else [option, ",".join(map(str, ids))]


@attrs.frozen(repr=False)
class Command(Generic[T], AttrsRepr):
    """One listing: how its argv is built, which parser reads its output, and what is known of it.

    The argv is ``prefix``, then the ``selectors`` given (in this order), then ``suffix``: nvidia-smi wants
    ``-i`` and ``-gi`` after ``mig`` and before the action (``mig -i 0 -gi 1 -lci``).
    """

    name: str
    """What doctor calls it ("GPU instances")."""
    method: str
    """The :class:`~smimig.client.Smi` method that reads it."""
    parser: Callable[[str], list[T]]
    prefix: tuple[str, ...]
    suffix: tuple[str, ...]
    selectors: tuple[Selector, ...] = ()
    """The selectors the command line takes, in the order they are written."""
    gpu_of: Callable[[T], int] | None = None
    """For a command that takes no ``-i``: each row's GPU, by which a GPU selection is made after parsing."""
    empty_messages: tuple[str, ...] = ()
    """Whole outputs that mean "nothing to list" (its parser gives ``[]`` for them; the exit code may be 6)."""
    verified_on: tuple[str, ...] = ()
    """The recordings (``fixtures/``, machine and driver) its parser reads."""
    self_check: bool = True
    """Whether doctor's self-check runs it."""

    def argv(self, gpu: Sequence[int] | None = None, gi: Sequence[int] | None = None) -> list[str]:
        """nvidia-smi's arguments (without the binary) for these selectors (already validated ids).

        Raises:
            ValueError: a selector this command does not take.
        """
        if gpu is not None and "-i" not in self.selectors and self.gpu_of is None:
            raise ValueError(f"{self.usage} takes no GPU selection")
        if gi is not None and "-gi" not in self.selectors:
            raise ValueError(f"{self.usage} takes no GPU instance selection")
        wanted: dict[Selector, Sequence[int] | None] = {"-i": gpu, "-gi": gi}
        options = [part for option in self.selectors for part in _option(option, wanted[option])]
        return [*self.prefix, *options, *self.suffix]

    @property
    def usage(self) -> str:
        """The command line with its selectors as optional parts: ``nvidia-smi mig [-i N] -lgi``."""
        options = [f"[{option} {_PLACEHOLDERS[option]}]" for option in self.selectors]
        return " ".join(["nvidia-smi", *self.prefix, *options, *self.suffix])

    def is_empty(self, text: str) -> bool:
        """Whether ``text`` is only this command's "nothing to list" answers."""
        return parsers.is_empty_message(text, self.empty_messages)

    def select(self, rows: Sequence[T], gpu: Sequence[int] | None) -> list[T]:
        """The rows of the GPUs asked for, for a command that cannot select them itself (else all rows)."""
        if gpu is None or self.gpu_of is None:
            return list(rows)
        gpu_of = self.gpu_of
        return [row for row in rows if gpu_of(row) in gpu]


# Recordings, by the machine and driver that printed them (fixtures/README.md).
_A100_515 = "a100-80gb-pcie-driver515"
_A30_545 = "a30-driver545"
_GH200_550 = "gh200-480gb-driver550"
_H100_580 = "h100-80gb-driver580"
_H200_580 = "h200-141gb-driver580"
_RTX_PRO_6000_580 = "rtx-pro-6000-blackwell-driver580"

_NO_MIG = (parsers.NO_MIG_ENABLED_DEVICES,)
_NO_GIS = (*_NO_MIG, parsers.NO_GPU_INSTANCES)
_NO_CIS = (*_NO_GIS, parsers.NO_COMPUTE_INSTANCES)
_CSV = "--format=csv,noheader"


def _gpu_index(gpu: Gpu) -> int:
    return gpu.index


GPUS: Command[Gpu] = Command(
    "gpus",
    "list_gpus",
    parsers.parse_gpu_list,
    prefix=(),
    suffix=("-L",),
    gpu_of=_gpu_index,  # driver 580: "ERROR: Option -i is not valid for this command" (-L -i 9, exit 2)
    verified_on=(_A30_545, _H100_580, _H200_580),
)
MIG_MODE: Command[MigMode] = Command(
    "mig mode",
    "mig_mode",
    parsers.parse_mig_mode,
    prefix=(),
    suffix=("--query-gpu=" + ",".join(parsers.MIG_MODE_FIELDS), _CSV),
    selectors=("-i",),
    verified_on=(_H100_580, _H200_580),
)
PCI_DEVICE_IDS: Command[PciDeviceId] = Command(
    "PCI device ids",
    "pci_device_ids",
    parsers.parse_pci_device_ids,
    prefix=(),
    suffix=("--query-gpu=" + ",".join(parsers.PCI_DEVICE_ID_FIELDS), _CSV),
    selectors=("-i",),
    self_check=False,  # read only for a mig-parted export; the doctor checks what MIG work reads
)
PCI_IDS: Command[PciDeviceId] = Command(
    "PCI ids",
    "pci_ids",
    parsers.parse_pci_ids,
    prefix=(),
    suffix=("--query-gpu=" + ",".join(parsers.PCI_ID_FIELDS), _CSV),
    selectors=("-i",),
    self_check=False,  # read only to resolve a mig-parted config; the doctor checks what MIG work reads
)
GI_PROFILES: Command[GpuInstanceProfile] = Command(
    "GPU instance profiles",
    "list_gi_profiles",
    parsers.parse_gi_profiles,
    prefix=("mig",),
    suffix=("-lgip",),
    selectors=("-i",),
    empty_messages=_NO_MIG,
    verified_on=(_A100_515, _A30_545, _GH200_550, _H100_580, _H200_580, _RTX_PRO_6000_580),
)
GI_PLACEMENTS: Command[GpuInstancePlacements] = Command(
    "GPU instance placements",
    "list_gi_placements",
    parsers.parse_gi_placements,
    prefix=("mig",),
    suffix=("-lgipp",),
    selectors=("-i",),
    empty_messages=_NO_MIG,
    verified_on=(_A30_545, _H100_580, _H200_580),
)
GIS: Command[GpuInstance] = Command(
    "GPU instances",
    "list_gis",
    parsers.parse_gis,
    prefix=("mig",),
    suffix=("-lgi",),
    selectors=("-i",),
    empty_messages=_NO_GIS,
    verified_on=(_A100_515, _A30_545, _H100_580),
)
CI_PROFILES: Command[ComputeInstanceProfile] = Command(
    "compute instance profiles",
    "list_ci_profiles",
    parsers.parse_ci_profiles,
    prefix=("mig",),
    suffix=("-lcip",),
    selectors=("-i", "-gi"),
    empty_messages=_NO_GIS,
    verified_on=(_A100_515, _A30_545, _H100_580, _H200_580),
)
CI_PLACEMENTS: Command[ComputeInstancePlacements] = Command(
    "compute instance placements",
    "list_ci_placements",
    parsers.parse_ci_placements,
    prefix=("mig",),
    suffix=("-lcipp",),
    selectors=("-i", "-gi"),
    empty_messages=_NO_GIS,
)
CIS: Command[ComputeInstance] = Command(
    "compute instances",
    "list_cis",
    parsers.parse_cis,
    prefix=("mig",),
    suffix=("-lci",),
    selectors=("-i", "-gi"),
    empty_messages=_NO_CIS,
    verified_on=(_A100_515, _A30_545, _H100_580, _H200_580),
)
MIG_DEVICES: Command[MigDeviceUsage] = Command(
    "MIG devices table",
    "list_mig_devices",
    parsers.parse_mig_devices,
    prefix=(),
    suffix=(),
    selectors=("-i",),
    verified_on=(_A100_515, _A30_545, _H100_580, _H200_580, _RTX_PRO_6000_580),
)
PROCESSES: Command[GpuProcess] = Command(
    "processes table",
    "list_processes",
    parsers.parse_processes,
    prefix=(),
    suffix=(),
    selectors=("-i",),
    verified_on=(_A100_515, _H100_580, _H200_580, _RTX_PRO_6000_580),
)

COMMANDS: tuple[Command[Any], ...] = (
    GPUS,
    MIG_MODE,
    PCI_DEVICE_IDS,
    PCI_IDS,
    GI_PROFILES,
    GI_PLACEMENTS,
    GIS,
    CI_PROFILES,
    CI_PLACEMENTS,
    CIS,
    MIG_DEVICES,
    PROCESSES,
)
"""Every listing smimig reads, in the order doctor reports them."""


def describe() -> str:
    """The registry as text: per listing its command line, parser, "nothing found" answers and recordings."""
    import textwrap  # noqa: PLC0415  # for doctor and the docs only, not at every command's start

    blocks = []
    for command in COMMANDS:
        lines = [f"{command.name}: {command.usage}", f"    parser: {command.parser.__name__}"]
        if command.gpu_of is not None:
            lines.append("    GPU selection: made on the parsed rows (the command line takes no -i)")
        empty = " | ".join(command.empty_messages) or "-"
        verified = ", ".join(command.verified_on) or "no recording (synthetic fixtures only)"
        for field in (f"nothing found: {empty}", f"verified on: {verified}"):
            lines += textwrap.wrap(
                field,
                110,
                initial_indent="    ",
                subsequent_indent="        ",
                break_long_words=False,
                break_on_hyphens=False,
            )
        if not command.self_check:
            lines.append("    doctor's self-check: left out")
        blocks.append("\n".join(lines))
    return "\n".join(blocks) + "\n"
