"""Parsers for the profile listings: ``-lgip``, ``-lgipp``, ``-lcip``, ``-lcipp``.

``nvidia-smi mig -lgip`` prints one two-line record per GPU instance profile::

    | GPU   Name             ID    Instances   Memory     P2P    SM    DEC   ENC  |
    |                              Free/Total   GiB              CE    JPEG  OFA  |
    |   0  MIG 1g.6gb+me     21     1/1        5.81       No     14     1     0   |
    |                                                             1     1     1   |

becomes ``GpuInstanceProfile(gpu=0, name='MIG 1g.6gb+me', id=21, free=1, total=1, memory_gib=5.81,
p2p=False, sm=14, dec=1, enc=0, ce=1, jpeg=1, ofa=1)``. ``-lcip`` is read the same way
(``ComputeInstanceProfile``, with ``is_default`` for the ``*`` after the id). ``-lgipp`` and ``-lcipp`` print
one line per profile, ``GPU  0 Profile ID  5 Placements: {0,2}:2``, read into ``Placement(start, size)``
tuples. Every parser returns ``[]`` for nvidia-smi's "nothing to list" messages and raises ``ParseError`` on
anything else it does not recognise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smimig.errors import ParseError
from smimig.models import (
    ComputeInstancePlacements,
    ComputeInstanceProfile,
    GpuInstancePlacements,
    GpuInstanceProfile,
)
from smimig.parsers._common import (
    NO_GPU_INSTANCES,
    NO_MIG_ENABLED_DEVICES,
    Pattern,
    Regex,
    compile_pattern,
    is_empty_message,
    match_line,
    placements_from,
)
from smimig.parsers.tables import read_single_box

if TYPE_CHECKING:
    from smimig.parsers.tables import Record

__all__ = [
    "parse_ci_placements",
    "parse_ci_profiles",
    "parse_gi_placements",
    "parse_gi_profiles",
]

_GI_PROFILES_TITLE = "GPU instance profiles:"
_GI_PROFILES_HEADER = "GPU Name ID Instances Memory P2P SM DEC ENC Free/Total GiB CE JPEG OFA".split()
_GI_PROFILE_FIRST = compile_pattern(
    "{gpu:Int} {name:Name} {id:Int} {free:Int}/{total:Int} {memory_gib:Float} {p2p:YesNo} {sm:Int} {dec:Int} {enc:Int}"
)
_GI_PROFILE_SECOND = compile_pattern("{ce:Int} {jpeg:Int} {ofa:Int}")
# A record's two lines matched at once, a line break between them: one match a profile (the lines are matched
# one by one only to say which of them is wrong).
_GI_PROFILE = compile_pattern(f"{_GI_PROFILE_FIRST.pattern}\n{_GI_PROFILE_SECOND.pattern}")

_CI_PROFILES_TITLE = "Compute instance profiles:"
_CI_PROFILES_HEADER = (
    "GPU GPU Name Profile Instances Exclusive Shared Instance ID Free/Total SM DEC ENC OFA ID CE JPEG".split()
)
_CI_PROFILE_FIRST = compile_pattern(
    "{gpu:Int} {gi:Int} {name:Name} {id:Int}{is_default:Default} {free:Int}/{total:Int} "
    "{sm:Int} {dec:Int} {enc:Int} {ofa:Int}"
)
_CI_PROFILE_SECOND = compile_pattern("{ce:Int} {jpeg:Int}")
_CI_PROFILE = compile_pattern(f"{_CI_PROFILE_FIRST.pattern}\n{_CI_PROFILE_SECOND.pattern}")

# "Placement :" (one placement) and "Placements:" (several), on drivers 510 to 580 alike.
_GI_PLACEMENTS = Regex(
    r"^GPU +(?P<gpu>[0-9]{1,12}) +Profile ID +(?P<profile_id>[0-9]{1,12}) +Placements? ?: +"
    r"\{(?P<starts>[0-9]{1,12}(?:,[0-9]{1,12})*)?\}:(?P<size>[0-9]{1,12})$"
)
_CI_PLACEMENTS = Regex(
    r"^GPU +(?P<gpu>[0-9]{1,12}) +GI +(?P<gi>[0-9]{1,12}) +Profile ID +(?P<profile_id>[0-9]{1,12}) +Placements? ?: +"
    r"\{(?P<starts>[0-9]{1,12}(?:,[0-9]{1,12})*)?\}:(?P<size>[0-9]{1,12})$"
)

_GI_EMPTY = (NO_MIG_ENABLED_DEVICES,)
_CI_EMPTY = (NO_MIG_ENABLED_DEVICES, NO_GPU_INSTANCES)


def _two_lines(record: Record, text: str, patterns: tuple[Pattern, Pattern, Pattern], what: str) -> dict[str, Any]:
    """The fields of a two-line record: ``patterns`` are the first line's, the second's, and both at once."""
    if len(record.lines) != 2:
        raise ParseError(f"a {what} record has two lines", text, record.number)
    first, second = record.lines
    first_pattern, second_pattern, both = patterns
    fields = both.match(f"{first.text}\n{second.text}")
    if fields is None:  # say which line is wrong
        match_line(first_pattern, first.text, text, first.number, what)
        match_line(second_pattern, second.text, text, second.number, what)
        raise ParseError(f"unrecognised {what}", text, first.number)  # not reached: one of the lines is wrong
    return fields


def parse_gi_profiles(text: str) -> list[GpuInstanceProfile]:
    """Parse ``nvidia-smi mig -lgip`` into GPU instance profiles, in printed order."""
    if is_empty_message(text, _GI_EMPTY):
        return []
    box = read_single_box(text, _GI_PROFILES_TITLE, _GI_PROFILES_HEADER)
    patterns = (_GI_PROFILE_FIRST, _GI_PROFILE_SECOND, _GI_PROFILE)
    return [GpuInstanceProfile(**_two_lines(record, text, patterns, "GPU instance profile")) for record in box.records]


def parse_ci_profiles(text: str) -> list[ComputeInstanceProfile]:
    """Parse ``nvidia-smi mig -lcip`` into compute instance profiles, in printed order."""
    if is_empty_message(text, _CI_EMPTY):
        return []
    box = read_single_box(text, _CI_PROFILES_TITLE, _CI_PROFILES_HEADER)
    patterns = (_CI_PROFILE_FIRST, _CI_PROFILE_SECOND, _CI_PROFILE)
    return [
        ComputeInstanceProfile(**_two_lines(record, text, patterns, "compute instance profile"))
        for record in box.records
    ]


def _placement_lines(text: str, pattern: Regex, what: str) -> list[dict[str, str]]:
    found = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        match = pattern.match(line)
        if match is None:
            raise ParseError(f"unrecognised {what} line", text, number)
        found.append(match.groupdict(default=""))
    if not found:
        raise ParseError(f"no {what} lines", text)
    return found


def parse_gi_placements(text: str) -> list[GpuInstancePlacements]:
    """Parse ``nvidia-smi mig -lgipp`` into the possible placements of each GPU instance profile."""
    if is_empty_message(text, _GI_EMPTY):
        return []
    return [
        GpuInstancePlacements(
            gpu=int(fields["gpu"]),
            profile_id=int(fields["profile_id"]),
            placements=placements_from(fields["starts"], int(fields["size"])),
        )
        for fields in _placement_lines(text, _GI_PLACEMENTS, "GPU instance placement")
    ]


def parse_ci_placements(text: str) -> list[ComputeInstancePlacements]:
    """Parse ``nvidia-smi mig -lcipp`` into the possible placements of each compute instance profile."""
    if is_empty_message(text, _CI_EMPTY):
        return []
    return [
        ComputeInstancePlacements(
            gpu=int(fields["gpu"]),
            gi=int(fields["gi"]),
            profile_id=int(fields["profile_id"]),
            placements=placements_from(fields["starts"], int(fields["size"])),
        )
        for fields in _placement_lines(text, _CI_PLACEMENTS, "compute instance placement")
    ]
