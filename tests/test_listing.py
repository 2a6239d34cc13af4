"""Listings print as tables and show as HTML in Jupyter, yet stay plain lists of models."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from tabulate import tabulate

import smimig
from smimig import GpuInstance, Placement
from smimig.listing import Listing, text_table
from smimig.sim import SimulatedRunner

GIS = [
    GpuInstance(gpu=0, name="MIG 2g.12gb", profile_id=5, id=1, placement=Placement(0, 2)),
    GpuInstance(gpu=0, name="MIG 2g.12gb", profile_id=5, id=2, placement=Placement(2, 2)),
]


def test_listing_is_a_plain_list() -> None:
    listing = Listing(GIS)
    assert listing == GIS
    assert isinstance(listing, list)
    assert listing[1].id == 2
    assert repr(listing) == repr(GIS)


def test_listing_prints_a_table() -> None:
    assert str(Listing(GIS)).splitlines() == [
        "gpu    name         profile_id    id    placement",
        "-----  -----------  ------------  ----  -----------",
        "0      MIG 2g.12gb  5             1     0:2",
        "0      MIG 2g.12gb  5             2     2:2",
    ]
    assert str(Listing([])) == "(none)"


def test_listing_html() -> None:
    html = Listing(GIS)._repr_html_()
    assert html.startswith("<table><thead><tr><th>gpu</th><th>name</th>")
    assert html.count("<tr>") == 3
    assert "<td>2:2</td>" in html


def test_api_results_display() -> None:
    smi = smimig.Smi(runner=SimulatedRunner("A30", mig=True))
    created = smi.create_gi(0, ["2g.12gb"], ci=True)
    assert "<th>compute_instances</th>" in created._repr_html_()
    status = smi.status()
    assert "MIG-89b757f7-3c4c-5b1c-9476-a11b14aa9308" in status._repr_html_()
    assert str(status).splitlines()[0] == "GPU 0  NVIDIA A30  GPU-d8430827-89da-89df-1d70-bde0c9883859  MIG on"


# Cells of every kind text_table lays out itself (printable ASCII, blanks, padding, number-like text) and some
# it hands to tabulate (wide characters, tabs, line breaks).
_CELLS = st.text(alphabet=" 0123456789.-+:eEnaifTrueFls/MIGgb*x", max_size=12) | st.sampled_from(
    ["", " ", "1e5", "nan", "True", "0x1F", "-3", " padded ", "界", "tab\there", "two\nlines", "é"]
)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 5).flatmap(
        lambda n: st.tuples(
            st.lists(_CELLS, min_size=n, max_size=n), st.lists(st.lists(_CELLS, min_size=n, max_size=n), max_size=5)
        )
    )
)
def test_text_table_is_tabulates_simple_format(table: tuple[list[str], list[list[str]]]) -> None:
    header, rows = table
    assert text_table(header, rows) == tabulate(rows, headers=header, tablefmt="simple", disable_numparse=True)
