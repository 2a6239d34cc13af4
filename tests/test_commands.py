"""The command registry: every entry has fixtures, builds the argv nvidia-smi wants, and names the recordings
its parser reads; Smi's listing methods send exactly the registry's argv."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Sequence
from typing import Any

import pytest

import smimig
from smimig import commands, parsers
from smimig.commands import COMMANDS, Command
from smimig.runner import RunResult
from smimig.sim import SimulatedRunner
from tests.fixtures import Case, cases

ALL_CASES = cases()
ENTRIES = pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command.method)


class Recording:
    """A runner that keeps every argv and answers from the simulator, or with one canned answer."""

    def __init__(self, answer: tuple[int, str, str] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.answer = answer
        self.sim = SimulatedRunner("A30", gpus=2, mig=True)

    def run(self, args: Sequence[str]) -> RunResult:
        self.calls.append(list(args))
        if self.answer is not None:
            return RunResult(("nvidia-smi", *args), *self.answer)
        return self.sim.run(args)


def test_one_entry_per_listing_with_unique_names() -> None:
    assert len({command.name for command in COMMANDS}) == len(COMMANDS)
    assert len({command.method for command in COMMANDS}) == len(COMMANDS)
    assert len({command.parser for command in COMMANDS}) == len(COMMANDS)


@ENTRIES
def test_every_entry_has_fixtures_of_its_parser(command: Command[Any]) -> None:
    assert getattr(parsers, command.parser.__name__) is command.parser
    assert [case for case in ALL_CASES if case.parser == command.parser.__name__]


@ENTRIES
def test_every_empty_message_parses_to_nothing(command: Command[Any]) -> None:
    # The registry says what the client takes as empty; the parser must agree, alone or all together.
    for message in command.empty_messages:
        assert command.is_empty(message + "\n")
        assert command.parser(message + "\n") == []
    if command.empty_messages:
        assert command.parser("\n".join(command.empty_messages) + "\n") == []


# -- argv ----------------------------------------------------------------------------------------------

MODE_QUERY = "--query-gpu=index,pci.bus_id,mig.mode.current,mig.mode.pending"


@pytest.mark.parametrize(
    ("command", "gpu", "gi", "argv"),
    [
        (commands.GPUS, None, None, ["-L"]),
        (commands.GPUS, [1, 3], None, ["-L"]),  # driver 580 refuses -L -i: selected after parsing
        (commands.MIG_MODE, None, None, [MODE_QUERY, "--format=csv,noheader"]),
        (commands.MIG_MODE, [0, 2], None, ["-i", "0,2", MODE_QUERY, "--format=csv,noheader"]),
        (commands.PCI_DEVICE_IDS, [1], None, ["-i", "1", "--query-gpu=index,pci.device_id", "--format=csv,noheader"]),
        (commands.GI_PROFILES, None, None, ["mig", "-lgip"]),
        (commands.GI_PROFILES, [0], None, ["mig", "-i", "0", "-lgip"]),
        (commands.GI_PLACEMENTS, [0, 2], None, ["mig", "-i", "0,2", "-lgipp"]),
        (commands.GIS, [0], None, ["mig", "-i", "0", "-lgi"]),
        (commands.CI_PROFILES, [0], [1], ["mig", "-i", "0", "-gi", "1", "-lcip"]),
        (commands.CI_PROFILES, None, [1, 2], ["mig", "-gi", "1,2", "-lcip"]),
        (commands.CI_PLACEMENTS, [0], None, ["mig", "-i", "0", "-lcipp"]),
        (commands.CIS, [0], [2], ["mig", "-i", "0", "-gi", "2", "-lci"]),
        (commands.CIS, None, None, ["mig", "-lci"]),
        (commands.MIG_DEVICES, None, None, []),
        (commands.MIG_DEVICES, [0], None, ["-i", "0"]),
        (commands.PROCESSES, [1], None, ["-i", "1"]),
    ],
)
def test_argv(command: Command[Any], gpu: list[int] | None, gi: list[int] | None, argv: list[str]) -> None:
    assert command.argv(gpu, gi) == argv


@pytest.mark.parametrize(
    "command", [commands.GPUS, commands.MIG_MODE, commands.GI_PROFILES, commands.GIS, commands.MIG_DEVICES]
)
def test_a_gi_selection_where_none_is_taken_is_refused(command: Command[Any]) -> None:
    with pytest.raises(ValueError, match="takes no GPU instance selection"):
        command.argv(None, [1])


def test_usage_shows_the_selectors_in_place() -> None:
    assert [command.usage for command in COMMANDS if command.prefix == ("mig",)] == [
        "nvidia-smi mig [-i N] -lgip",
        "nvidia-smi mig [-i N] -lgipp",
        "nvidia-smi mig [-i N] -lgi",
        "nvidia-smi mig [-i N] [-gi G] -lcip",
        "nvidia-smi mig [-i N] [-gi G] -lcipp",
        "nvidia-smi mig [-i N] [-gi G] -lci",
    ]
    assert commands.GPUS.usage == "nvidia-smi -L"
    assert commands.MIG_DEVICES.usage == "nvidia-smi [-i N]"


# -- Smi reads the registry ----------------------------------------------------------------------------


@ENTRIES
def test_each_method_sends_its_entrys_argv(command: Command[Any]) -> None:
    runner = Recording()
    smi = smimig.Smi(runner=runner)
    method = getattr(smi, command.method)
    method()
    method(gpu=1)
    assert runner.calls == [command.argv(), command.argv([1])]
    if "-gi" in command.selectors:
        method(gpu=0, gi=[1, 2])
        assert runner.calls[-1] == command.argv([0], [1, 2])


def test_read_selects_gpus_after_parsing_where_the_command_cannot() -> None:
    runner = Recording()
    gpus = smimig.Smi(runner=runner).read(commands.GPUS, gpu=1)
    assert [gpu.index for gpu in gpus] == [1]
    assert runner.calls == [["-L"]]


def test_read_refuses_a_selector_before_running_anything() -> None:
    runner = Recording()
    with pytest.raises(ValueError, match="takes no GPU instance selection"):
        smimig.Smi(runner=runner).read(commands.GIS, gi=1)
    with pytest.raises(ValueError, match="gi must hold non-negative ints"):
        smimig.Smi(runner=runner).read(commands.CIS, gi=[-1])
    assert runner.calls == []


def test_only_the_commands_own_empty_answers_are_empty() -> None:
    # exit code 6 (NVML's NOT_FOUND) with the listing's own "nothing found" answer: an empty listing
    gis = smimig.Smi(runner=Recording((6, "No GPU instances found: Not Found\n", "")))
    assert gis.read(commands.GIS) == []
    # the same exit code with another listing's answer is a failure, not an empty listing
    profiles = smimig.Smi(runner=Recording((6, "No compute instances found: Not Found\n", "")))
    with pytest.raises(smimig.NvidiaSmiError):
        profiles.read(commands.GI_PROFILES)


def test_read_raw_returns_the_answer_unchecked() -> None:
    smi = smimig.Smi(runner=Recording((6, "No devices were found\n", "")))
    result = smi.read_raw(commands.GI_PROFILES, gpu=9)
    assert (result.args, result.returncode) == (("nvidia-smi", "mig", "-i", "9", "-lgip"), 6)
    with pytest.raises(smimig.NvidiaSmiError):
        smi.parse(commands.GI_PROFILES, result)


def test_pci_device_ids_come_from_the_registry_entry() -> None:
    assert smimig.Smi(runner=Recording()).pci_device_ids() == {0: "0x20B710DE", 1: "0x20B710DE"}


# -- verified drivers ----------------------------------------------------------------------------------

# In more-profile-tables/ each file names its machine and driver ("gh200-480gb-driver550-lgip.txt"); the
# B200's driver was not shown, so its table verifies no driver.
_MACHINE_AND_DRIVER = re.compile(r"^(?P<recording>.+-driver[0-9]+)-")


def _recording(case: Case) -> str | None:
    directory = case.path.parent.name
    if directory == "synthetic":
        return None
    if directory == "more-profile-tables":
        match = _MACHINE_AND_DRIVER.match(case.path.name)
        return match["recording"] if match else None
    return directory


def _form(argv: Sequence[str]) -> list[str]:
    """An argv without its selectors and with the query's fields left out: the command, not its options."""
    form: list[str] = []
    skip = False
    for part in argv:
        if skip:
            skip = False
        elif part in ("-i", "-gi"):
            skip = True
        else:
            form.append(part.split("=")[0])
    return form


@ENTRIES
def test_verified_drivers_are_the_recordings_of_its_command(command: Command[Any]) -> None:
    recorded = set()
    for case in ALL_CASES:
        if case.parser != command.parser.__name__:
            continue
        spec = json.loads(case.path.read_text(encoding="utf-8"))
        assert spec["command"][0] == "nvidia-smi"
        assert _form(spec["command"][1:]) == _form(command.argv()), case.id
        recording = _recording(case)
        if recording is not None:
            recorded.add(recording)
    assert set(command.verified_on) == recorded
    assert len(command.verified_on) == len(recorded)


def test_the_module_docstring_shows_the_registry() -> None:
    assert commands.__doc__ is not None
    assert textwrap.indent(commands.describe(), "    ") in commands.__doc__
