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
    assert {
        "a30-driver545",
        "a100-80gb-pcie-driver515",
        "h100-80gb-driver580",
        "h200-141gb-driver580",
        "more-profile-tables",
        "synthetic",
    } <= directories


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


# -- what drivers add, drop or rename ---------------------------------------------------------------

RTX_ONE_DEVICE = "more-profile-tables/rtx-pro-6000-blackwell-driver580-table-one-mig-device.txt"


def _widen_mig_devices_box(text: str, heading: tuple[str, str, str], value: str = "7") -> str:
    """Add a fifth column, headed by the three lines of ``heading``, to every line of the "MIG devices:" box."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| MIG devices:")) - 1
    end = next(i for i in range(start, len(lines)) if not lines[i].strip())
    header_seen = 0
    for index in range(start, end):
        line = lines[index]
        if set(line) <= set("+- "):
            lines[index] = line + "------+"
        elif set(line) <= set("|=+"):
            lines[index] = line + "======|"
        elif line.startswith("| MIG devices:"):
            lines[index] = line[:-1] + "       |"
        elif "GPU  GI" in line or header_seen:
            lines[index] = line + f" {heading[header_seen]:<6}|"
            header_seen = (header_seen + 1) % 3
        else:
            first_line_of_record = line.split("|")[1].strip() != ""
            lines[index] = line + f" {value if first_line_of_record else '':<6}|"
    return "\n".join(lines) + "\n"


def test_driver_580_shared_headings_are_read() -> None:
    (row,) = parsers.parse_mig_devices(text_of(RTX_ONE_DEVICE))
    assert (row.gpu, row.gi, row.ci, row.index, row.memory_total_mib, row.bar1_total_mib, row.sm) == (
        0,
        3,
        0,
        0,
        24192,
        8327,
        46,
    )


def test_an_extra_mig_devices_column_is_skipped() -> None:
    text = _widen_mig_devices_box(text_of(RTX_ONE_DEVICE), ("Foo", "", ""))
    assert parsers.parse_mig_devices(text) == parsers.parse_mig_devices(text_of(RTX_ONE_DEVICE))


def test_a_known_mig_devices_column_twice_is_refused() -> None:
    text = _widen_mig_devices_box(text_of(RTX_ONE_DEVICE), ("Vol", "SM Unc", "ECC"))
    with pytest.raises(ParseError, match="unrecognised header"):
        parsers.parse_mig_devices(text)


def test_renamed_heading_inside_a_word_list_is_not_a_synonym() -> None:
    # "Shared" alone before a column other than the memory ones is a new heading, not the 580 rename.
    text = text_of("a30-driver545/lgi.txt").replace("Profile  Instance", "Shared   Instance", 1)
    with pytest.raises(ParseError, match="unrecognised header"):
        parsers.parse_gis(text)


def test_lci_without_placement_column_gives_no_placement() -> None:
    lines = text_of("a30-driver545/lci.txt").splitlines()
    # Cut the Placement column (its 13 characters before the closing border) out of every line.
    narrowed = "\n".join(line[:-14] + line[-1] if len(line) > 20 else line for line in lines) + "\n"
    cis = parsers.parse_cis(narrowed)
    assert [(ci.gi, ci.id, ci.placement) for ci in cis] == [(1, 0, None), (1, 1, None), (2, 0, None), (2, 1, None)]


def test_lci_with_placement_heading_but_no_values_is_refused() -> None:
    text = text_of("a30-driver545/lci.txt").replace("0:1", "   ").replace("1:1", "   ")
    with pytest.raises(ParseError, match="unrecognised compute instance"):
        parsers.parse_cis(text)


# -- review findings: what must never be read silently ----------------------------------------------

A100_TWO_CIS = "a100-80gb-pcie-driver515/table.txt"


def _mig_box(text: str) -> str:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| MIG devices:")) - 1
    end = next(i for i in range(start, len(lines)) if not lines[i].strip())
    return "\n".join(lines[start:end]) + "\n"


def test_a_second_mig_devices_table_is_refused() -> None:
    text = text_of(RTX_ONE_DEVICE)
    doubled = text + "\n" + _mig_box(text).replace("0    3   0   0", "1    5   0   0")
    with pytest.raises(ParseError, match="more than one 'MIG devices:' table") as caught:
        parsers.parse_mig_devices(doubled)
    assert caught.value.line_number > len(text.splitlines())


def test_a_second_processes_table_is_refused() -> None:
    text = text_of(RTX_ONE_DEVICE)
    lines = text.splitlines()
    title = next(i for i, line in enumerate(lines) if line.startswith("| Processes:"))
    processes = "\n".join(lines[title - 1 :]) + "\n"
    with pytest.raises(ParseError, match="more than one 'Processes:' table"):
        parsers.parse_processes(text + "\n" + processes)


@pytest.mark.parametrize("column", [0, 2, 3])
def test_text_on_a_records_second_line_outside_the_bar1_cell_is_refused(column: int) -> None:
    text = text_of(RTX_ONE_DEVICE)
    second = "|                  |               0MiB /  8327MiB    |           |                       |"
    cells = second[1:-1].split("|")
    cells[column] = cells[column][:-4] + " 7  "
    with pytest.raises(ParseError, match="second line"):
        parsers.parse_mig_devices(text.replace(second, "|" + "|".join(cells) + "|"))


def test_memory_is_shared_only_across_an_open_border() -> None:
    text = text_of(A100_TWO_CIS)
    merged = next(line for line in text.splitlines() if line.startswith("+---") and "+   " in line)
    closed = merged.replace(" ", "-")
    with pytest.raises(ParseError, match="memory cell is empty"):
        parsers.parse_mig_devices(text.replace(merged, closed))


def test_a_mig_device_listed_twice_is_refused() -> None:
    text = text_of(A100_TWO_CIS).replace("  0    1   1   1  ", "  0    1   0   1  ")
    with pytest.raises(ParseError, match="listed twice"):
        parsers.parse_mig_devices(text)


def test_a_synonym_never_spans_two_header_lines() -> None:
    # "Memory-Usage Shared" over "BAR1-Usage" is not driver 580's "Shared BAR1-Usage".
    text = (
        text_of(RTX_ONE_DEVICE)
        .replace("Shared Memory-Usage |", "Memory-Usage Shared |")
        .replace("Shared BAR1-Usage |", "       BAR1-Usage |")
    )
    with pytest.raises(ParseError, match="unrecognised header"):
        parsers.parse_mig_devices(text)


@pytest.mark.parametrize("digits", [13, 400, 5000])
def test_absurd_numbers_are_parse_errors(digits: int) -> None:
    huge = "9" * digits
    lgip = text_of("a30-driver545/lgip.txt")
    with pytest.raises(ParseError):
        parsers.parse_gi_profiles(lgip.replace("5.81  ", huge + "  ", 1))
    with pytest.raises(ParseError):
        parsers.parse_gis(text_of("a30-driver545/lgi.txt").replace("   5        1 ", f"   {huge}        1 ", 1))
    with pytest.raises(ParseError):
        parsers.parse_gi_placements(f"GPU  0 Profile ID {huge} Placements: {{0,2}}:2\n")


def test_no_mig_devices_table_names_the_enabled_line() -> None:
    text = text_of("a30-driver545/table-two-cis.txt").split("\n\n")[0] + "\n"
    with pytest.raises(ParseError) as caught:
        parsers.parse_mig_devices(text)
    assert caught.value.line.strip().endswith("Enabled |")
