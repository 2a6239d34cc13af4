"""FakeRunner: the runner smimig ships for users' tests (and its own)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

import smimig
from smimig.runner import RunResult
from smimig.sim import SimulatedRunner
from smimig.testing import FakeRunner, UnexpectedCommand
from tests.fixtures import text_of


def test_answers_in_every_form() -> None:
    recorded = RunResult(("/usr/bin/nvidia-smi", "-L"), 0, text_of("a30-driver545/L-mig-off.txt"), "")
    runner = FakeRunner(
        {
            ("-L",): recorded,
            ("mig", "-lgi"): text_of("a30-driver545/lgi.txt"),
            ("mig", "-i", "9", "-lgi"): (6, "No devices were found\n", ""),
            ("mig", "-lci"): smimig.NvidiaSmiTimeout(["nvidia-smi", "mig", "-lci"], 60),
        }
    )
    smi = smimig.Smi(runner=runner)
    assert runner.run(["-L"]) is recorded
    assert len(smi.list_gpus()) == 4
    assert [gi.id for gi in smi.list_gis()] == [1, 2]
    with pytest.raises(smimig.NvidiaSmiError) as failed:
        smi.list_gis(9)
    assert (failed.value.returncode, failed.value.command) == (6, "nvidia-smi mig -i 9 -lgi")
    with pytest.raises(smimig.NvidiaSmiTimeout):
        smi.list_cis()
    assert runner.calls == [("-L",), ("-L",), ("mig", "-lgi"), ("mig", "-i", "9", "-lgi"), ("mig", "-lci")]


def test_an_unknown_command_fails_the_test_and_is_recorded() -> None:
    runner = FakeRunner({("-L",): ""}, handler=lambda args: None)  # a handler may decline too
    with pytest.raises(UnexpectedCommand, match=r"no answer for: nvidia-smi mig -i 0 -cgi 5,5 -C") as caught:
        smimig.Smi(runner=runner).create_gi(0, ["5", "5"], ci=True)
    assert isinstance(caught.value, AssertionError)  # not a SmimigError: the code under test cannot swallow it
    assert caught.value.args_list == ("mig", "-i", "0", "-cgi", "5,5", "-C")
    assert runner.calls == [("mig", "-i", "0", "-cgi", "5,5", "-C")]


def test_the_table_comes_before_the_handler() -> None:
    node = SimulatedRunner("A30", gpus=1, mig=True)
    runner = FakeRunner({("mig", "-lgi"): "No GPU instances found: Not Found\n"}, handler=node.run)
    smi = smimig.Smi(runner=runner)
    smi.create_gi(0, ["2g.12gb"])
    assert smi.list_gis() == []  # the table's answer, though the simulator has one now
    assert len(smimig.Smi(runner=node).list_gis()) == 1


def test_keys_are_argument_tuples() -> None:
    with pytest.raises(TypeError, match="argument tuples"):
        FakeRunner({"mig -lgi": ""})  # type: ignore[dict-item]


def test_calls_from_threads_are_all_recorded() -> None:
    runner = FakeRunner(handler=lambda args: "")
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda n: runner.run(["-i", str(n)]), range(200)))
    assert sorted(runner.calls) == sorted(("-i", str(n)) for n in range(200))
