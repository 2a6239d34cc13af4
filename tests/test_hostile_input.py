"""Layout and mig-parted files read strictly and within bounds: every absurd input is one LayoutError, at once.

Each case here either turned into a meaning nobody wrote (``mig-enabled: "false"`` turned MIG on) or took
minutes and gigabytes before failing (an alias bomb, a count of 10^9, 10 000 GPU instances, deep nesting).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smimig import Layout, LayoutError
from smimig.layout import MAX_FILE_BYTES, MigPartedDevice, load_data

A30S = [MigPartedDevice(index, "0x20B710DE") for index in range(4)]


def mig_parted(entries: str) -> str:
    return "version: v1\nmig-configs:\n  lab:\n" + entries


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('    - devices: all\n      mig-enabled: "false"\n', "'mig-enabled' is true or false"),
        ("    - devices: all\n      mig-enabled: yes please\n", "'mig-enabled' is true or false"),
        ('    - devices: "0"\n      mig-enabled: false\n', "'devices' is 'all' or a list"),
        ("    - devices: 0\n      mig-enabled: false\n", "'devices' is 'all' or a list"),
        ("    - devices: [true]\n      mig-enabled: false\n", "'devices' is 'all' or a list"),
        ("    - devices: [0, '1']\n      mig-enabled: false\n", "'devices' is 'all' or a list"),
        (
            "    - devices: all\n      mig-enabled: true\n      mig-devices:\n        1g.6gb: 1000000000\n",
            "more than any GPU holds",
        ),
    ],
)
def test_mig_parted_entries_mean_what_they_say_or_are_refused(entry: str, message: str) -> None:
    with pytest.raises(LayoutError, match=message):
        Layout.loads(mig_parted(entry), config="lab", devices=A30S)


@pytest.mark.parametrize(("devices", "selected"), [("[]", []), ("[0, 7]", [0])])
def test_indices_the_node_lacks_select_nothing_as_mig_parted_reads_them(devices: str, selected: list[int]) -> None:
    layout = Layout.loads(
        mig_parted(f"    - devices: {devices}\n      mig-enabled: false\n"), config="lab", devices=A30S
    )
    assert list(layout.gpus) == selected


@pytest.mark.parametrize("empty", ['""', "[]"])
def test_an_empty_device_filter_is_no_filter_as_mig_parted_reads_it(empty: str) -> None:
    text = mig_parted(f"    - devices: all\n      device-filter: {empty}\n      mig-enabled: false\n")
    layout = Layout.loads(text, config="lab", devices=A30S)
    assert layout.gpus == dict.fromkeys(range(4))


@pytest.mark.parametrize(
    "text",
    [
        "gpus:\n  0: [1g.6gb]\n  0: [2g.12gb]\n",
        "gpus:\n  0: [1g.6gb]\n  '0': [2g.12gb]\n",
        '{"gpus": {"0": ["1g.6gb"], "0": ["2g.12gb"]}}',
        '{"0": ["1g.6gb"], "0": []}',
    ],
)
def test_a_gpu_given_twice_is_refused_not_last_one_wins(text: str) -> None:
    with pytest.raises(LayoutError, match="twice"):
        Layout.loads(text)


def test_a_yaml_alias_bomb_is_refused_unexpanded() -> None:
    bomb = 'a: &a ["1c.2g.12gb","1c.2g.12gb","1c.2g.12gb","1c.2g.12gb","1c.2g.12gb","1c.2g.12gb","1c.2g.12gb"]\n'
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [*{previous},*{previous},*{previous},*{previous},*{previous},*{previous}]\n"
    bomb += "gpus: {0: [{profile: 2g.12gb, cis: *i}]}\n"
    with pytest.raises(LayoutError, match="aliases"):
        Layout.loads(bomb)


def test_ten_thousand_gpu_instances_are_refused_at_once() -> None:
    with pytest.raises(LayoutError, match="more than 16 GPU instances"):
        Layout.loads(json.dumps({"0": ["1g.6gb"] * 10_000}))


def test_too_many_compute_instances_and_gpus_are_refused() -> None:
    with pytest.raises(LayoutError, match="compute instances"):
        Layout({0: [{"profile": "2g.12gb", "cis": ["1c.2g.12gb"] * 100}]})
    with pytest.raises(LayoutError, match="not a GPU index"):
        Layout({10**9: []})
    with pytest.raises(LayoutError, match="not a GPU index"):
        Layout.loads('{"' + "9" * 5000 + '": []}')


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_deep_nesting_is_refused(opening: str) -> None:
    with pytest.raises(LayoutError, match="nested deeper"):
        Layout.loads(opening * 200_000)


def test_a_zero_slice_profile_is_refused_not_divided_by() -> None:
    with pytest.raises(LayoutError):
        Layout({0: [{"profile": "2g.12gb", "cis": ["0c.2g.12gb"]}]})
    with pytest.raises(LayoutError):
        Layout.loads(
            mig_parted("    - devices: all\n      mig-enabled: true\n      mig-devices:\n        0c.2g.12gb: 1\n"),
            config="lab",
            devices=A30S,
        )


def test_files_that_are_not_layouts_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(LayoutError, match="larger than"):
        Layout.load(big)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"gpus: {0: [\xff]}\n")
    with pytest.raises(LayoutError, match="not UTF-8"):
        Layout.load(binary)
    with pytest.raises(LayoutError, match="directory"):
        Layout.load(tmp_path)
    with pytest.raises(LayoutError, match="more than"):
        load_data(" " * (MAX_FILE_BYTES + 1))
