"""Slice maps: golden text maps for four GPU families read through the real path (simulator -> nvidia-smi's
text -> parsers -> status), the SVG read back as XML, plan's before -> after, LayoutError's suggestions, and
the room left checked against nvidia-smi's own Free counts."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import attrs
import pytest

import smimig
from smimig import Placement, slice_map
from smimig.geometry import ProfileGeometry
from smimig.layout import Layout
from smimig.ledger import LeaseRecord
from smimig.models import ComputeInstance, GpuInstance
from smimig.sim import SimulatedRunner
from smimig.slice_map import FreeSpan, InstanceSpan, SliceMap, build_map, layout_map

SVG = "{http://www.w3.org/2000/svg}"

# (model, state): the GPU instances to create (items as create_gi takes them) and, per GPU instance created,
# the compute instances to create in it; None: -C (one full-size compute instance each).
STATES: dict[tuple[str, str], tuple[list[Any], dict[int, list[str]] | None]] = {
    ("A30", "empty"): ([], None),
    ("A30", "full"): (["4g.24gb"], None),
    ("A30", "fragmented"): ([("1g.6gb", 0), ("1g.6gb", 2)], None),
    ("A30", "several CIs"): (["2g.12gb", "2g.12gb"], {0: ["1c.2g.12gb"] * 2, 1: ["1c.2g.12gb"] * 2}),
    ("A100-40GB", "empty"): ([], None),
    ("A100-40GB", "full"): (["7g.40gb"], None),
    ("A100-40GB", "fragmented"): ([("1g.5gb", 1), ("1g.5gb", 5)], None),
    ("A100-40GB", "several CIs"): (
        ["4g.20gb", "3g.20gb"],
        {0: ["2c.4g.20gb", "1c.4g.20gb", "1c.4g.20gb"], 1: ["1c.3g.20gb"] * 3},
    ),
    ("H100-80GB", "empty"): ([], None),
    ("H100-80GB", "full"): (["7g.80gb"], None),
    ("H100-80GB", "fragmented"): ([("2g.20gb", 2), ("1g.10gb", 6)], None),
    ("H100-80GB", "several CIs"): (["7g.80gb"], {0: ["2c.7g.80gb", "1c.7g.80gb", "3c.7g.80gb"]}),
    ("RTX-PRO-6000", "empty"): ([], None),
    ("RTX-PRO-6000", "full"): (["4g.96gb"], None),
    ("RTX-PRO-6000", "fragmented"): ([("1g.24gb", 3), ("1g.24gb", 9)], None),
    ("RTX-PRO-6000", "several CIs"): (["2g.48gb", "1g.24gb+me"], {0: ["1c.2g.48gb"] * 2, 1: ["1g.24gb+me"]}),
}

# What `smimig status` draws under each GPU's heading, checked by hand: spans in memory slices (the H100's
# 7g.80gb takes all 8 of them, with 7 compute slices; the RTX PRO 6000's driver prints placements on a grid
# of 12, drawn as its 4 slices), compute instances at their placements (the 7g.80gb's compute slice 3 is empty).
GOLDEN: dict[tuple[str, str], list[str]] = {
    ("A30", "empty"): ["|     free      |     free      |     free      |     free      |"],
    ("A30", "full"): ["|                         4g.24gb GI 1                          |"],
    ("A30", "fragmented"): ["|  1g.6gb GI 1  |     free      |  1g.6gb GI 2  |     free      |"],
    ("A30", "several CIs"): [
        "|         2g.12gb GI 1          |         2g.12gb GI 2          |",
        "|     CI 0      :     CI 1      |     CI 0      :     CI 1      |",
    ],
    ("A100-40GB", "empty"): ["| free  | free  | free  | free  | free  | free  | free  | free  |"],
    ("A100-40GB", "full"): ["|                         7g.40gb GI 1                          |"],
    ("A100-40GB", "fragmented"): ["| free  |1g GI 1| free  | free  | free  |1g GI 2| free  | free  |"],
    ("A100-40GB", "several CIs"): [
        "|         4g.20gb GI 1          |         3g.20gb GI 2          |",
        "|     CI 0      : CI 1  : CI 2  |   CI 0   :  CI 1   :   CI 2   |",
    ],
    ("H100-80GB", "empty"): ["| free  | free  | free  | free  | free  | free  | free  | free  |"],
    ("H100-80GB", "full"): ["|                         7g.80gb GI 1                          |"],
    ("H100-80GB", "fragmented"): ["| free  | free  | 2g.20gb GI 1  | free  | free  |1g GI 2| free  |"],
    ("H100-80GB", "several CIs"): [
        "|                         7g.80gb GI 1                          |",
        "|      CI 0       :  CI 1  :         :           CI 2           |",
    ],
    ("RTX-PRO-6000", "empty"): ["|     free      |     free      |     free      |     free      |"],
    ("RTX-PRO-6000", "full"): ["|                         4g.96gb GI 1                          |"],
    ("RTX-PRO-6000", "fragmented"): ["|     free      | 1g.24gb GI 1  |     free      | 1g.24gb GI 2  |"],
    ("RTX-PRO-6000", "several CIs"): [
        "|         2g.48gb GI 1          |1g.24gb+me GI 2|     free      |",
        "|     CI 0      :     CI 1      |     CI 0      |               |",
    ],
}


def node(model: str, state: str, gpus: int = 1) -> tuple[smimig.Smi, SimulatedRunner]:
    """A simulated node whose GPU 0 is in ``state`` (see STATES), made through smimig's own calls."""
    runner = SimulatedRunner(model, gpus=gpus, mig=True)
    smi = smimig.Smi(runner=runner)
    gis, cis = STATES[(model, state)]
    if gis:
        made = smi.create_gi(0, gis, ci=cis is None)
        for position, names in (cis or {}).items():
            smi.create_ci(0, made[position].id, names)
    return smi, runner


def parse_svg(text: str) -> ET.Element:
    return ET.fromstring(text)  # noqa: S314  # smimig's own SVG, parsed to check it is well-formed


def drawn(smi: smimig.Smi, gpu: int = 0) -> SliceMap:
    status = smi.status()
    found = status.gpus[gpu].slice_map
    assert found is not None
    return found


@pytest.fixture(autouse=True)
def own_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test reads (and a lease writes) a ledger of its own, beside a lock file of its own."""
    monkeypatch.setenv("SMIMIG_LOCK_FILE", str(tmp_path / "smimig.lock"))


# -- the text maps --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "state"), list(GOLDEN), ids=[f"{model}-{state}" for model, state in GOLDEN])
def test_status_draws_the_golden_map(model: str, state: str) -> None:
    smi, _ = node(model, state)
    status = smi.status()
    text = str(status).splitlines()
    assert text[0].startswith("GPU 0  ")
    assert text[1 : 1 + len(GOLDEN[(model, state)])] == [f"  {line}" for line in GOLDEN[(model, state)]]
    assert all(len(line) <= 80 for line in text if line.startswith("  |"))  # readable at 80 columns


@pytest.mark.parametrize(("model", "state"), list(STATES), ids=[f"{model}-{state}" for model, state in STATES])
def test_the_room_left_is_what_nvidia_smi_says_is_free(model: str, state: str) -> None:
    smi, _ = node(model, state)
    free = {profile.short_name: (profile.free, profile.total) for profile in smi.list_gi_profiles(0)}
    assert {room.profile: (room.fits, room.total) for room in drawn(smi).room} == free


def test_the_room_left_agrees_with_nvidia_smi_after_random_changes() -> None:
    rng = random.Random(19)  # noqa: S311  # a repeatable walk, not a secret
    for model in ("A30", "A100-40GB", "H100-80GB", "RTX-PRO-6000", "B200", "GH200-480GB"):
        runner = SimulatedRunner(model, mig=True)
        smi = smimig.Smi(runner=runner, max_workers=1)
        for _ in range(12):
            offered = [profile for profile in smi.list_gi_profiles(0) if profile.free]
            gis = smi.list_gis(0)
            if gis and (not offered or rng.random() < 0.3):
                smi.destroy_gi(0, gi=rng.choice(gis).id)
            elif offered:
                smi.create_gi(0, [rng.choice(offered).id])
            free = {profile.short_name: profile.free for profile in smi.list_gi_profiles(0)}
            assert {room.profile: room.fits for room in drawn(smi).room} == free, (model, smi.list_gis(0))


def test_both_grids_of_the_rtx_pro_6000_draw_the_same_gpu() -> None:
    """Driver 580.65 prints placements {0,1,2,3}:1, 580.105 {0,3,6,9}:3: the same four slices."""
    pictures = []
    for model in ("RTX-PRO-6000", "RTX-PRO-6000-GRID4"):
        smi = smimig.Smi(runner=SimulatedRunner(model, mig=True))
        smi.create_gi(0, [("2g.48gb", 0), ("1g.24gb", 6 if model == "RTX-PRO-6000" else 2)], ci=True)
        picture = drawn(smi)
        pictures.append(picture.lines())
        assert [(span.start, span.size) for span in picture.spans] == [(0, 2), (2, 1), (3, 1)]
    assert pictures[0] == pictures[1]


def test_mig_off_draws_nothing_and_every_gpu_in_mig_mode_is_drawn() -> None:
    runner = SimulatedRunner("A30", gpus=2)
    smi = smimig.Smi(runner=runner)
    smi.enable_mig(1)
    status = smi.status()
    assert status.gpus[0].slice_map is None
    assert status.gpus[1].slice_map is not None
    assert str(status).splitlines()[:3] == [
        "GPU 0  NVIDIA A30  GPU-d8430827-89da-89df-1d70-bde0c9883859  MIG off",
        "GPU 1  NVIDIA A30  GPU-d1ee693e-571b-7664-f22b-1312585630d0  MIG on",
        "  |     free      |     free      |     free      |     free      |",
    ]


def test_status_json_is_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    from smimig import cli  # noqa: PLC0415

    out = io.StringIO()
    assert cli.main(["--simulate", "A30x1", "--reset-simulation", "mode", "on", "-i", "0"], io.StringIO()) == 0
    assert cli.main(["--simulate", "A30x1", "create-gi", "2g.12gb", "-i", "0", "-C"], io.StringIO()) == 0
    assert cli.main(["--simulate", "A30x1", "status", "--json"], out, io.StringIO()) == 0
    (gpu,) = json.loads(out.getvalue())["gpus"]
    assert set(gpu) == {"gpu", "mode", "gpu_instances", "profiles"}
    assert "slice_map" not in out.getvalue()


def test_the_map_is_not_loaded_for_a_listing() -> None:
    """``smimig gis`` loads no drawing code (the command line's start time)."""
    code = (
        "import io, sys; from smimig import cli; "
        "cli.main(['--simulate', 'A30x1', 'gis'], io.StringIO(), io.StringIO()); "
        "print('smimig.slice_map' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout == "False\n"


# -- compute instances, marks ----------------------------------------------------------------------------


def test_compute_instances_without_placements_are_drawn_in_creation_order() -> None:
    """Early drivers print -lci without a Placement column."""
    profiles = [ProfileGeometry(9, "3g.20gb", 4, (0, 4), 2)]
    gis = [GpuInstance(0, "MIG 3g.20gb", 9, 1, Placement(4, 4))]
    cis = [
        ComputeInstance(0, 1, "MIG 2c.3g.20gb", 1, 0, None),
        ComputeInstance(0, 1, "MIG 1c.3g.20gb", 0, 1, None),
    ]
    picture = build_map(0, profiles, gis, cis)
    (instance,) = picture.instances
    assert [(ci.id, ci.start, ci.size, ci.placed) for ci in instance.compute] == [(0, 0, 2, False), (1, 2, 1, False)]
    assert picture.lines() == [
        "|             free              |         3g.20gb GI 1          |",
        "|                               |        CI 0        :   CI 1   |",
    ]


def test_leased_and_busy_instances_are_marked(tmp_path: Path) -> None:
    runner = SimulatedRunner("H100-80GB", mig=True)
    smi = smimig.Smi(runner=runner)
    with smi.lease("3g.40gb") as lease:
        runner.add_process(0, lease.gi, lease.ci, pid=31337, name="python train.py")
        try:
            picture = drawn(smi)
        finally:
            runner.remove_process(31337)
        assert picture.lines()[1:] == [
            "|       |       |       |       |            CI 0*!             |",
            f"* GI {lease.gi} CI 0 leased by {lease_holder(picture)}",
            f"! GI {lease.gi} CI 0 busy: PID 31337 python train.py",
        ]
        root = parse_svg(picture.svg())
        legend = root.find(f".//{SVG}g[@class='legend']")
        assert legend is not None
        assert "leased" in "".join(legend.itertext())
        assert "busy" in "".join(legend.itertext())
        ci = root.find(f".//{SVG}g[@class='ci']")
        assert ci is not None
        assert any(rect.get("fill", "").startswith("url(#") for rect in ci.iter(f"{SVG}rect"))


def lease_holder(picture: SliceMap) -> str:
    (instance,) = picture.instances
    (ci,) = instance.compute
    assert ci.leased_by is not None
    return ci.leased_by


def test_marked_adds_leases_of_its_own_gpu_only() -> None:
    smi, _ = node("A30", "several CIs")
    picture = drawn(smi)
    record = LeaseRecord(
        gpu=0, gi=2, ci=1, profile="MIG 1c.2g.12gb", placement=Placement(2, 2), uuid=None, user="alice", pid=48213,
        alive=True, state="held", created_at="2025-06-12T10:15:02+02:00", uid=1000, start_time=None, boot_id=None,
        entry="x.json",
    )  # fmt: skip
    marked = picture.marked(leases=[record, attrs.evolve(record, gpu=1, ci=0)])
    assert marked.lines() == [
        "|         2g.12gb GI 1          |         2g.12gb GI 2          |",
        "|     CI 0      :     CI 1      |     CI 0      :     CI 1*     |",
        "* GI 2 CI 1 leased by alice (PID 48213)",
    ]
    assert picture.marked() is picture


# -- the SVG ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "state"), list(STATES), ids=[f"{model}-{state}" for model, state in STATES])
def test_svg_has_one_span_per_gpu_instance_at_its_slice(model: str, state: str) -> None:
    smi, _ = node(model, state)
    picture = drawn(smi)
    root = parse_svg(picture.svg())  # well-formed XML, nothing to fetch or run
    assert root.tag == f"{SVG}svg"
    assert not [
        element for element in root.iter() if element.tag in (f"{SVG}script", f"{SVG}image", f"{SVG}foreignObject")
    ]
    assert "href" not in picture.svg()
    slice_width = 480 / picture.slices
    spans = root.findall(f".//{SVG}g[@class='gi']")
    assert len(spans) == len(smi.list_gis(0))
    for group, instance in zip(spans, picture.instances):
        rect = group.find(f"{SVG}rect")
        assert rect is not None
        assert group.get("data-gi") == str(instance.id)
        assert float(rect.get("x", "")) == pytest.approx(8 + instance.start * slice_width, abs=0.05)
        assert float(rect.get("width", "")) == pytest.approx(instance.size * slice_width, abs=0.05)
    free = root.findall(f".//{SVG}g[@class='free']")
    assert len(free) == picture.free_slices
    rooms = {
        group.get("data-profile"): int(group.get("data-fits", ""))
        for group in root.iter(f"{SVG}g")
        if group.get("class") == "room"
    }
    assert rooms == {room.profile: room.fits for room in picture.room}


def test_svg_tooltips_name_the_mig_devices() -> None:
    smi, _ = node("A30", "several CIs")
    root = parse_svg(drawn(smi).svg())
    titles = [group.findtext(f"{SVG}title") or "" for group in root.iter(f"{SVG}g") if group.get("class") == "ci"]
    uuids = {device.uuid for device in smi.devices(0)}
    assert len(titles) == 4
    assert {title.splitlines()[1] for title in titles} == uuids
    assert titles[0].splitlines()[0] == "CI 0 in GI 1: MIG 1c.2g.12gb (compute slice 0)"


def test_svg_reads_in_light_and_dark_themes() -> None:
    """Text and lines take the page's colour; fills are translucent over whatever background it has."""
    smi, _ = node("H100-80GB", "fragmented")
    root = parse_svg(drawn(smi).svg())
    assert root.get("fill") == "currentColor"
    for rect in root.iter(f"{SVG}rect"):
        fill = rect.get("fill", "")
        assert fill in ("none", "currentColor") or fill.startswith("url(#") or rect.get("fill-opacity") is not None


def test_status_and_plan_show_svgs_in_jupyter() -> None:
    smi, _ = node("H100-80GB", "fragmented", gpus=2)
    page = smi.status()._repr_html_()
    assert page.count("<svg") == 2  # each GPU in MIG mode, empty or not
    plan = smi.plan(Layout.from_dict({0: ["3g.40gb", "3g.40gb"], 1: ["7g.80gb"]}))
    html = plan._repr_html_()
    assert html.count("<svg") == 4  # before and after, each GPU
    assert "nvidia-smi mig -i 0 -gi 1,2 -dgi" in html


# -- plan and LayoutError ----------------------------------------------------------------------------------


def test_plan_text_shows_before_and_after() -> None:
    smi, _ = node("H100-80GB", "fragmented")
    wanted = ["2g.20gb:2", "1g.10gb:6", "1g.10gb", {"profile": "2g.20gb", "cis": ["1c.2g.20gb"] * 2}]
    planned = smi.plan(Layout.from_dict({0: wanted}))
    assert str(planned).splitlines() == [
        "GPU 0: keep 2, destroy 0, create 2",
        "  before | free  | free  | 2g.20gb GI 1  | free  | free  |1g GI 2| free  |",
        "  after  |  2g.20gb new  | 2g.20gb GI 1  |1g new | free  |1g GI 2| free  |",
        "         |new CI :new CI |     CI 0      |new CI |       | CI 0  |       |",
        "  nvidia-smi mig -i 0 -cgi 1g.10gb:4 -C",
        "  nvidia-smi mig -i 0 -cgi 2g.20gb:0",
        "  nvidia-smi mig -i 0 -gi <the GI at slice 0> -cci 1c.2g.20gb,1c.2g.20gb",
    ]
    (gpu,) = planned.gpus
    assert gpu.after is not None
    assert [(span.start, span.id) for span in gpu.after.instances] == [(0, None), (2, 1), (4, None), (6, 2)]


def test_plan_of_a_gpu_whose_mig_mode_changes() -> None:
    smi = smimig.Smi(runner=SimulatedRunner("H100-80GB", gpus=2))  # driver 580 lists profiles with MIG off
    smi.enable_mig(1)
    smi.create_gi(1, ["7g.80gb"], ci=True)
    text = str(smi.plan(Layout.from_dict({0: ["4g.40gb", "3g.40gb"], 1: None}))).splitlines()
    assert text[:3] == [
        "GPU 0: keep 0, destroy 0, create 2",
        "  before (MIG off)",
        "  after  |          4g.40gb new          |          3g.40gb new          |",
    ]
    assert "  after  (MIG off)" in text


def test_layout_error_draws_its_suggestions() -> None:
    smi, _ = node("A100-40GB", "empty")
    with pytest.raises(smimig.LayoutError) as raised:
        smi.plan(Layout.from_dict({0: ["4g.20gb", "3g.20gb", "1g.5gb"]}))
    error = raised.value
    assert len(error.suggestion_maps) == len(error.suggestions) > 0
    for suggestion, picture in zip(error.suggestions, error.suggestion_maps):
        names = sorted(instance.profile for instance in picture.instances)
        assert names == sorted(suggestion.strip("[]").split(", "))
        assert picture.title == "suggested"
    page = error._repr_html_()
    assert page.count("<svg") == len(error.suggestions)
    for svg in page.split("<div>")[1:]:
        parse_svg(svg.removesuffix("</div>"))


def test_layout_error_json_leaves_the_drawings_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    from smimig import cli  # noqa: PLC0415

    layout = tmp_path / "layout.json"
    layout.write_text('{"gpus": {"0": ["7g.40gb", "1g.5gb"]}}')
    out = io.StringIO()
    assert cli.main(["--simulate", "A100-40GBx1", "--reset-simulation", "mode", "on", "-i", "0"], io.StringIO()) == 0
    assert cli.main(["--simulate", "A100-40GBx1", "plan", str(layout), "--json"], out, io.StringIO()) == 2
    details = json.loads(out.getvalue())["error"]["details"]
    assert set(details) == {"reason", "suggestions"}


def test_layout_map_of_a_model() -> None:
    picture = layout_map("H100", ["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"])
    assert picture.lines() == ["|  2g.20gb new  |1g new |1g new |          3g.40gb new          |"]
    assert picture.name == "NVIDIA H100 80GB HBM3"
    assert [(room.profile, room.fits) for room in picture.room if room.fits] == []
    with pytest.raises(ValueError, match="does not fit"):
        layout_map("A30", ["4g.24gb", "1g.6gb"])
    with pytest.raises(ValueError, match=r"no GPU instance profile '9g\.1gb'"):
        layout_map("A30", ["9g.1gb"])


def test_overlapping_instances_are_refused() -> None:
    profiles = [ProfileGeometry(5, "2g.12gb", 2, (0, 2), 2)]
    gis = [
        GpuInstance(0, "MIG 2g.12gb", 5, 1, Placement(0, 2)),
        GpuInstance(0, "MIG 2g.12gb", 5, 2, Placement(1, 2)),
    ]
    with pytest.raises(ValueError, match="overlap"):
        build_map(0, profiles, gis)


def test_spans_cover_every_slice_once() -> None:
    smi, _ = node("A100-40GB", "fragmented")
    picture = drawn(smi)
    covered = [index for span in picture.spans for index in range(span.start, span.end)]
    assert covered == list(range(picture.slices))
    assert [type(span) for span in picture.spans].count(InstanceSpan) == 2
    assert all(span.size == 1 for span in picture.spans if isinstance(span, FreeSpan))
    assert slice_map.SliceMap is SliceMap
