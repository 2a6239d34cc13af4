"""Validation of what users pass as profiles, before anything reaches a command line.

``-cgi`` takes profile ids (``5``), short names (``2g.12gb``, ``1g.6gb+me``), full names
(``MIG 2g.12gb``), each optionally with a placement start (``9:0``). Every item is checked against a
strict pattern (names by geometry's one grammar, :data:`smimig.geometry.PROFILE_NAME_PATTERN`), so nothing
like ``"5,7"``, ``"5 -dgi"`` or ``"$(x)"`` can ever reach nvidia-smi's arguments.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Union

from smimig.geometry import PROFILE_NAME_PATTERN, Placement

__all__ = ["CiProfileSpec", "GiProfileSpec", "ci_profile_list", "gi_profile_list"]

GiProfileSpec = Union[int, str, tuple[Union[int, str], Union[int, Placement]]]
"""A GPU instance profile: ``5``, ``"5"``, ``"2g.12gb"``, ``"MIG 2g.12gb"``, ``"9:0"``, ``("9", 0)``,
``("3g.40gb", Placement(4, 4))``."""

CiProfileSpec = Union[int, str]
"""A compute instance profile: ``0``, ``"0"``, ``"1c.2g.12gb"``, ``"MIG 1c.2g.12gb"``."""

_ID = r"[0-9]{1,3}"  # ASCII digits only: a fullwidth 5 is a digit to Python, not to nvidia-smi
_PROFILE = re.compile(rf"(?:{_ID}|{PROFILE_NAME_PATTERN})")
_GI_ITEM = re.compile(rf"(?:{_ID}|{PROFILE_NAME_PATTERN})(?::[0-9]{{1,2}})?")


def _profile_text(profile: object, what: str) -> str:
    if isinstance(profile, bool) or not isinstance(profile, (int, str)):
        raise ValueError(f"{what} must be an int or a str; got {profile!r}")
    if isinstance(profile, int):
        if profile < 0:
            raise ValueError(f"{what} id must be non-negative; got {profile!r}")
        return str(profile)
    return profile


def _start_text(start: object) -> str:
    if isinstance(start, Placement):
        start = start.start
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise ValueError(f"a profile's placement start must be a non-negative int or a Placement; got {start!r}")
    return str(start)


def gi_profile_item(item: GiProfileSpec) -> str:
    """One ``-cgi`` item as nvidia-smi takes it (``"5"``, ``"MIG 2g.12gb"``, ``"9:0"``).

    Raises:
        ValueError: naming the item, for anything that is not a profile id or name (with its start).
    """
    if isinstance(item, tuple):
        if len(item) != 2:
            raise ValueError(f"a (profile, start) pair has two items; got {item!r}")
        profile = _profile_text(item[0], "GPU instance profile")
        if not _PROFILE.fullmatch(profile):
            raise ValueError(f"not a GPU instance profile id or name: {item[0]!r}")
        text = f"{profile}:{_start_text(item[1])}"
    else:
        text = _profile_text(item, "GPU instance profile")
    if not _GI_ITEM.fullmatch(text):
        raise ValueError(f"not a GPU instance profile id or name (optionally with ':start'): {item!r}")
    return text


def gi_profile_list(profiles: Sequence[GiProfileSpec]) -> str:
    """The ``-cgi`` argument for ``profiles``: the items, validated, joined with commas."""
    if isinstance(profiles, (str, bytes, tuple)) or not isinstance(profiles, Sequence):
        raise ValueError(f"profiles must be a list of profiles; got {profiles!r}")
    if not profiles:
        raise ValueError("profiles must not be empty")
    return ",".join(gi_profile_item(item) for item in profiles)


def ci_profile_list(profiles: Sequence[CiProfileSpec]) -> str:
    """The ``-cci`` argument for ``profiles``: the items, validated, joined with commas."""
    if isinstance(profiles, (str, bytes, tuple)) or not isinstance(profiles, Sequence):
        raise ValueError(f"profiles must be a list of profiles; got {profiles!r}")
    if not profiles:
        raise ValueError("profiles must not be empty (use None for the default profile)")
    items = []
    for item in profiles:
        text = _profile_text(item, "compute instance profile")
        if not _PROFILE.fullmatch(text):
            raise ValueError(f"not a compute instance profile id or name: {item!r}")
        items.append(text)
    return ",".join(items)
