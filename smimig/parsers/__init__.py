"""Pure parsers: nvidia-smi's text in, smimig's models out.

Each parser is a function ``parse_x(text: str) -> list[Model]``: no I/O, no state. It returns ``[]`` for
nvidia-smi's "nothing to list" messages and raises ``smimig.ParseError`` for anything it does not recognise.
Which command each parser reads, with its "nothing to list" messages, is in :mod:`smimig.commands`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smimig.parsers._common import (
    EMPTY_LISTINGS,
    NO_COMPUTE_INSTANCES,
    NO_GPU_INSTANCES,
    NO_MIG_DEVICES,
    NO_MIG_ENABLED_DEVICES,
    is_empty_message,
)
from smimig.parsers.devices import (
    MIG_MODE_FIELDS,
    PCI_DEVICE_ID_FIELDS,
    PCI_ID_FIELDS,
    parse_gpu_list,
    parse_mig_devices,
    parse_mig_mode,
    parse_pci_device_ids,
    parse_pci_ids,
    parse_processes,
)
from smimig.parsers.instances import parse_cis, parse_gis
from smimig.parsers.profiles import (
    parse_ci_placements,
    parse_ci_profiles,
    parse_gi_placements,
    parse_gi_profiles,
)

if TYPE_CHECKING:  # loaded on first use by __getattr__ below
    from smimig.parsers.messages import (
        parse_create_ci,
        parse_create_gi,
        parse_destroy_ci,
        parse_destroy_gi,
        parse_set_mig_mode,
    )

__all__ = [
    "MIG_MODE_FIELDS",
    "NO_COMPUTE_INSTANCES",
    "NO_GPU_INSTANCES",
    "NO_MIG_DEVICES",
    "NO_MIG_ENABLED_DEVICES",
    "PCI_DEVICE_ID_FIELDS",
    "PCI_ID_FIELDS",
    "is_empty_listing",
    "is_empty_message",
    "parse_ci_placements",
    "parse_ci_profiles",
    "parse_cis",
    "parse_create_ci",
    "parse_create_gi",
    "parse_destroy_ci",
    "parse_destroy_gi",
    "parse_gi_placements",
    "parse_gi_profiles",
    "parse_gis",
    "parse_gpu_list",
    "parse_mig_devices",
    "parse_mig_mode",
    "parse_pci_device_ids",
    "parse_pci_ids",
    "parse_processes",
    "parse_set_mig_mode",
]


def is_empty_listing(text: str) -> bool:
    """Whether ``text`` is only nvidia-smi's "nothing to list" messages (which may come with exit code 6)."""
    return is_empty_message(text, EMPTY_LISTINGS)


_MESSAGES = frozenset(
    ("parse_create_ci", "parse_create_gi", "parse_destroy_ci", "parse_destroy_gi", "parse_set_mig_mode")
)


def __getattr__(name: str) -> Any:  # noqa: ANN401  # a parser
    if name in _MESSAGES:  # the changes' parsers (and their models) load when a change runs, not for a listing
        from smimig.parsers import messages  # noqa: PLC0415

        return getattr(messages, name)
    raise AttributeError(f"module 'smimig.parsers' has no attribute {name!r}")
