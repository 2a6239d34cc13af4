"""Every parser over every fixture of its command, compared in full with the hand-written result."""

from __future__ import annotations

import json
from typing import Any, Callable

import attrs
import pytest

from smimig import ParseError, parsers
from smimig.models import Placement
from tests.fixtures import Case, cases, text_of

ALL_CASES = cases()


def plain(value: Any) -> Any:
    """Tuples as lists, as JSON has them."""
    return json.loads(json.dumps(value))


PARSERS: dict[str, Callable[..., list[Any]]] = {
    name: getattr(parsers, name) for name in parsers.__all__ if name.startswith("parse_")
}


def test_every_parser_has_fixtures() -> None:
    covered = {case.parser for case in ALL_CASES}
    assert covered == set(PARSERS)


def test_every_recording_directory_has_fixtures() -> None:
    directories = {case.path.parent.name for case in ALL_CASES}
    assert {"a30-driver545", "a100-80gb-pcie-driver515", "h100-80gb-driver580"} <= directories


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda case: case.id)
def test_parser_matches_expected(case: Case) -> None:
    parsed = PARSERS[case.parser](case.text, **case.options)
    if isinstance(parsed, list):
        assert plain([attrs.asdict(item) for item in parsed]) == case.expected
    else:  # the mutating commands' OperationOutput: completed, failures, warnings
        assert plain(attrs.asdict(parsed)) == case.expected


# -- pinned details -------------------------------------------------------------------------------


def test_padding_around_numbers_is_read() -> None:
    # nvidia-smi pads ids to two columns ("Profile ID  5", "GPU  0"): the number is still 5.
    (placements,) = parsers.parse_gi_placements("GPU  0 Profile ID  5 Placement : {0}:4\n")
    assert placements.profile_id == 5
    assert placements.placements == (Placement(0, 4),)


def test_default_compute_profile_is_marked() -> None:
    profiles = parsers.parse_ci_profiles(text_of("a30-driver545/lcip.txt"))
    assert [(profile.gi, profile.name, profile.is_default) for profile in profiles] == [
        (1, "MIG 1c.2g.12gb", False),
        (1, "MIG 2g.12gb", True),
        (2, "MIG 1c.2g.12gb", False),
        (2, "MIG 2g.12gb", True),
    ]


def test_profile_derived_properties() -> None:
    profiles = {profile.name: profile for profile in parsers.parse_gi_profiles(text_of("a30-driver545/lgip.txt"))}
    me = profiles["MIG 1g.6gb+me"]
    assert (me.short_name, me.slices, me.media_extensions) == ("1g.6gb+me", 1, True)
    full = profiles["MIG 4g.24gb"]
    assert (full.short_name, full.slices, full.media_extensions) == ("4g.24gb", 4, False)
    cis = parsers.parse_ci_profiles(text_of("a100-80gb-pcie-driver515/lcip.txt"))
    assert [(ci.short_name, ci.slices) for ci in cis] == [
        ("1c.3g.40gb", 1),
        ("2c.3g.40gb", 2),
        ("3g.40gb", 3),
    ]


def test_merged_memory_cell_carries_the_gi_figures() -> None:
    rows = parsers.parse_mig_devices(text_of("a100-80gb-pcie-driver515/table.txt"))
    assert [(row.gi, row.ci, row.memory_used_mib, row.memory_total_mib, row.bar1_total_mib) for row in rows] == [
        (1, 0, 19, 40192, 65535),
        (1, 1, 19, 40192, 65535),
    ]


@pytest.mark.parametrize(
    ("line", "name", "uuid"),
    [
        ("  MIG 1g.10gb+me  Device  0: (UUID: MIG-0a1b)", "MIG 1g.10gb+me", "MIG-0a1b"),
        ("  MIG 7g.141gb    Device  0: (UUID: MIG-0a1b)", "MIG 7g.141gb", "MIG-0a1b"),
        ("  MIG 1c.3g.40gb  Device 12: (UUID: MIG-0a1b)", "MIG 1c.3g.40gb", "MIG-0a1b"),
        ("  MIG 3g.20gb Device 0: (UUID: MIG-GPU-5a69/1/0)", "MIG 3g.20gb", "MIG-GPU-5a69/1/0"),
    ],
)
def test_mig_device_names_of_other_gpus(line: str, name: str, uuid: str) -> None:
    (gpu,) = parsers.parse_gpu_list("GPU 0: NVIDIA H200 (UUID: GPU-5a69)\n" + line + "\n")
    (device,) = gpu.mig_devices
    assert (device.name, device.uuid) == (name, uuid)


# -- refusals ---------------------------------------------------------------------------------------

GARBAGE = [
    "",
    "hello\n",
    "+----+\n| x |\n+----+\n",
    "GPU 0: no uuid here\n",
]


@pytest.mark.parametrize("name", sorted(PARSERS))
@pytest.mark.parametrize("text", GARBAGE)
def test_garbage_raises_parse_error(name: str, text: str) -> None:
    with pytest.raises(ParseError) as caught:
        PARSERS[name](text)
    assert caught.value.text == text


def test_new_column_is_refused_not_guessed() -> None:
    text = text_of("a30-driver545/lgi.txt").replace("Placement  |", "Placement X|", 1)
    with pytest.raises(ParseError, match="unrecognised header") as caught:
        parsers.parse_gis(text)
    assert caught.value.line_number == 3


def test_parse_error_names_the_line() -> None:
    text = text_of("a30-driver545/lgi.txt").replace("   5        2 ", "   5        x ")
    with pytest.raises(ParseError) as caught:
        parsers.parse_gis(text)
    assert caught.value.line_number == 8
    assert "x" in caught.value.line
    assert "line 8" in str(caught.value)


def test_mig_mode_rejects_unknown_values() -> None:
    with pytest.raises(ParseError, match="unrecognised MIG mode"):
        parsers.parse_mig_mode("0, 00000000:17:00.0, Enabled, Maybe\n")


def test_mig_mode_not_supported() -> None:
    (mode,) = parsers.parse_mig_mode("0, 00000000:01:00.0, [N/A], [N/A]\n")
    assert (mode.supported, mode.current, mode.pending, mode.is_pending) == (False, False, False, False)


@pytest.mark.parametrize(
    ("fixture", "name", "keep"),
    [
        ("a30-driver545/lgi.txt", "parse_gis", 5),
        ("a30-driver545/lgip.txt", "parse_gi_profiles", 5),
        ("a30-driver545/lci.txt", "parse_cis", 6),
    ],
)
def test_a_table_with_no_rows_is_refused(fixture: str, name: str, keep: int) -> None:
    lines = text_of(fixture).splitlines()
    text = "\n".join([*lines[:keep], lines[0]]) + "\n"  # title, header, rule, closing border
    with pytest.raises(ParseError, match="no rows"):
        PARSERS[name](text)


def test_mig_mode_on_without_a_mig_devices_table_is_refused() -> None:
    text = text_of("a30-driver545/table-two-cis.txt").split("\n\n")[0] + "\n"
    with pytest.raises(ParseError, match="no 'MIG devices:' table"):
        parsers.parse_mig_devices(text)


def test_python_digits_that_are_not_ascii_are_refused() -> None:
    with pytest.raises(ParseError):
        parsers.parse_mig_mode("\u00b2, 00000000:17:00.0, Enabled, Enabled\n")
    with pytest.raises(ParseError):
        parsers.parse_gis(text_of("a30-driver545/lgi.txt").replace("   5        1 ", "   \uff15        1 "))
