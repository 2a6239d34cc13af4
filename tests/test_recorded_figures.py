"""The A100 40GB's recorded figures (fixtures/a100-40gb-figures/README.md, a person's reading of real
``-lgip``/``-lgipp`` output) against the simulator's A100-40GB, through the real parsers."""

from __future__ import annotations

import re

import pytest

import smimig
from smimig.models import Placement
from smimig.sim import SimulatedRunner
from tests.fixtures import FIXTURES

FIGURES = (FIXTURES / "a100-40gb-figures" / "README.md").read_text(encoding="utf-8")


def recorded_rows() -> list[list[str]]:
    rows = []
    for line in FIGURES.splitlines():
        if line.startswith("| MIG "):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


ROWS = recorded_rows()


def test_the_table_is_read() -> None:
    assert [row[0] for row in ROWS] == [
        "MIG 1g.5gb",
        "MIG 1g.5gb+me",
        "MIG 2g.10gb",
        "MIG 3g.20gb",
        "MIG 4g.20gb",
        "MIG 7g.40gb",
    ]


@pytest.mark.parametrize("row", ROWS, ids=[row[0] for row in ROWS])
def test_each_recorded_profile_is_simulated_as_recorded(row: list[str]) -> None:
    name, profile_id, total, memory, sm, dec, enc, ce, jpeg, ofa, placements = row
    smi = smimig.Smi(runner=SimulatedRunner("A100-40GB", mig=True))  # driver 545 lists profiles in MIG mode only
    (profile,) = [p for p in smi.list_gi_profiles() if p.name == name]
    assert (profile.id, profile.total, profile.memory_gib) == (int(profile_id), int(total), float(memory))
    assert (profile.sm, profile.dec, profile.enc, profile.ce, profile.jpeg, profile.ofa) == tuple(
        int(value) for value in (sm, dec, enc, ce, jpeg, ofa)
    )
    (listed,) = [p for p in smi.list_gi_placements() if p.profile_id == profile.id]
    match = re.fullmatch(r"\{([0-9,]+)\}:([0-9]+)", placements)
    if match is None:  # 1g.5gb+me: the recording predates it; the catalog's inference is listed there
        assert listed.placements == tuple(Placement(start, 1) for start in range(7))
        return
    starts, size = match.groups()
    assert listed.placements == tuple(Placement(int(start), int(size)) for start in starts.split(","))
