"""smimig.geometry: the one profile-name grammar, placements and overlap, and the packing search."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import attrs
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import smimig
from smimig import GiSpec, Layout, LayoutError
from smimig.arguments import ci_profile_list, gi_profile_list
from smimig.geometry import (
    PROFILE_NAME_PATTERN,
    Placement,
    ProfileGeometry,
    ProfileName,
    blocking,
    count_fitting,
    feasible,
    free_starts,
    is_profile_name,
    limits_problem,
    pack,
    ranked_starts,
    short_profile_name,
    slice_count,
)
from smimig.layout import resolve_mig_parted
from smimig.models import ComputeInstanceProfile, GpuInstanceProfile
from smimig.sim import SimulatedRunner
from smimig.sim.catalog import MODELS, GpuModel, ci_profiles_for
from tests.fixtures import FIXTURES
from tests.nvidia_files import default_config
from tests.oracle import fits, multisets

# -- the grammar over every name NVIDIA ships ---------------------------------------------------------


def recorded_names() -> list[str]:
    """Every ``MIG <name>`` in the recordings, and every profile a mig-parted config asks for."""
    names: set[str] = set()
    for path in FIXTURES.rglob("*"):
        if path.suffix in (".txt", ".stdout"):
            names.update(re.findall(r"MIG [0-9]\S*", path.read_text(encoding="utf-8")))
    nvidia = default_config()  # NVIDIA's file, where shared/ provides it (tests/nvidia_files.py)
    if nvidia is not None:
        config = yaml.safe_load(nvidia.read_text(encoding="utf-8"))
        for entries in config["mig-configs"].values():
            for entry in entries:
                names.update(entry.get("mig-devices") or {})
    return sorted(names)


RECORDED = recorded_names()


def test_the_recordings_show_every_form() -> None:
    shorts = {short_profile_name(name) for name in RECORDED}
    for form in ("1g.10gb", "1c.2g.12gb", "1g.10gb+me", "1g.24gb+me.all", "1g.24gb-me", "1g.24gb+gfx", "7g.141gb"):
        assert form in shorts
    assert "1c.2g.48gb+gfx" in shorts


@pytest.mark.parametrize("text", RECORDED)
def test_every_recorded_name_is_read_and_written_back(text: str) -> None:
    name = ProfileName.parse(text)
    assert is_profile_name(text)
    assert re.fullmatch(PROFILE_NAME_PATTERN, text)
    assert name.short == short_profile_name(text)
    assert name.full == "MIG " + name.short
    assert ProfileName.parse(name.full) == ProfileName.parse(name.short) == name
    assert name.gpu_instance.compute_instance(name.slices) == name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1g.5gb", ProfileName(None, 1, "5gb")),
        ("MIG 1g.5gb", ProfileName(None, 1, "5gb")),
        ("1c.2g.12gb", ProfileName(1, 2, "12gb")),
        ("1g.10gb+me", ProfileName(None, 1, "10gb", ("+me",))),
        ("1g.24gb+me.all", ProfileName(None, 1, "24gb", ("+me.all",))),
        ("1g.24gb-me", ProfileName(None, 1, "24gb", ("-me",))),
        ("1g.24gb+gfx", ProfileName(None, 1, "24gb", ("+gfx",))),
        ("MIG 1c.2g.48gb+gfx", ProfileName(1, 2, "48gb", ("+gfx",))),
        ("7g.141gb", ProfileName(None, 7, "141gb")),
        ("1g.24gb+gfx+me", ProfileName(None, 1, "24gb", ("+gfx", "+me"))),
    ],
)
def test_names_read(text: str, expected: ProfileName) -> None:
    assert ProfileName.parse(text) == expected


def test_derived_parts() -> None:
    ci = ProfileName.parse("MIG 1c.2g.48gb+gfx")
    assert (ci.short, ci.full, str(ci), ci.slices) == ("1c.2g.48gb+gfx", "MIG 1c.2g.48gb+gfx", "1c.2g.48gb+gfx", 1)
    assert ci.gpu_instance == ProfileName.parse("2g.48gb+gfx")
    assert ProfileName.parse("3g.40gb").compute_instance(2).full == "MIG 2c.3g.40gb"
    assert ProfileName.parse("3g.40gb").compute_instance(3).full == "MIG 3g.40gb"
    for slices in (0, 4, True, "1"):
        with pytest.raises(ValueError, match="compute slices"):
            ProfileName.parse("3g.40gb").compute_instance(slices)  # type: ignore[arg-type]
    media = {text: ProfileName.parse(text).media_extensions for text in ("1g.10gb+me", "1g.24gb+me.all")}
    plain = {text: ProfileName.parse(text).media_extensions for text in ("1g.24gb-me", "1g.24gb+gfx", "1g.10gb")}
    assert all(media.values())
    assert not any(plain.values())


HOSTILE = [
    "",
    "1g.5gb ",
    " 1g.5gb",
    "1g.5gb\n",
    "1g.\uff15gb",  # a fullwidth 5: a digit to Python's \d, not to nvidia-smi
    "\uff11g.5gb",
    "\u00b2g.5gb",  # superscript two
    "1g.\u0663gb",  # Arabic-Indic three
    "0c.1g.5gb",
    "0g.5gb",
    "01g.5gb",
    "100g.5gb",
    "1g.12345gb",
    "1G.5GB",
    "mig 1g.5gb",
    "MIG  1g.5gb",
    "MIG1g.5gb",
    "1g.5gb+",
    "1g.5gb+me.",
    "1g.5gb+ME",
    "1g.5gb,2g.10gb",
    "1g.5gb -dgi",
    "$(reboot)",
    "1c.1c.2g.12gb",
    "1g.5mb",
    "5",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_names_are_refused_everywhere(text: str) -> None:
    assert not is_profile_name(text)
    assert not re.fullmatch(PROFILE_NAME_PATTERN, text)
    assert ProfileName.read(text) is None
    with pytest.raises(ValueError, match="not a MIG profile name"):
        ProfileName.parse(text)
    if text != "5":  # a profile id is not a name, but arguments take it
        with pytest.raises(ValueError, match="not a"):
            gi_profile_list([text])
        with pytest.raises(ValueError, match="not a"):
            ci_profile_list([text])
        with pytest.raises(LayoutError):
            GiSpec.parse(text)
    with pytest.raises(LayoutError):
        GiSpec("3g.20gb", None, (text,))


def test_a_zero_slice_profile_is_refused_not_divided_by() -> None:
    smi = smimig.Smi(runner=SimulatedRunner("A100-40GB", mig=True))
    for layout in (
        {0: [{"profile": "3g.20gb", "cis": ["0c.3g.20gb"]}]},
        {0: ["0g.5gb"]},
    ):
        with pytest.raises(LayoutError):
            smi.plan(Layout.from_dict(layout))
    for key in ("0c.3g.20gb", "MIG 0c.3g.20gb", "1c.0g.20gb"):
        entry = {"devices": "all", "mig-enabled": True, "mig-devices": {key: 2}}
        config = {"version": "v1", "mig-configs": {"zero": [entry]}}
        with pytest.raises(LayoutError):
            resolve_mig_parted(config, "zero", [smimig.MigPartedDevice(0, "0x20B010DE")])
    with pytest.raises(ValueError, match="not a"):
        smi.create_ci(0, 1, ["0c.3g.20gb"])
    # Names nvidia-smi prints that the grammar does not know give None, never a crash.
    odd = GpuInstanceProfile(0, "MIG 0g.5gb", 1, 1, 1, 4.75, False, 14, 0, 0, 1, 0, 0)
    assert (odd.short_name, odd.slices, odd.media_extensions) == ("0g.5gb", None, False)
    odd_ci = ComputeInstanceProfile(0, 1, "MIG 0c.3g.20gb", 0, False, 1, 1, 14, 0, 0, 0, 1, 0)
    assert odd_ci.slices is None


def test_the_pattern_text_embeds_without_groups() -> None:
    assert re.compile(PROFILE_NAME_PATTERN).groups == 0
    item = re.compile(rf"(?:{PROFILE_NAME_PATTERN})(?::[0-9]{{1,2}})?")
    assert item.fullmatch("MIG 1g.24gb+me.all:3")
    assert not item.fullmatch("1g.24gb:3:4")


NAME_CHARS = "MIG cg.b0123456789+-meallgfx.\uff15\u00b2 "


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=NAME_CHARS, max_size=24))
def test_the_pattern_and_the_reader_agree(text: str) -> None:
    name = ProfileName.read(text)
    assert (name is not None) == bool(re.fullmatch(PROFILE_NAME_PATTERN, text)) == is_profile_name(text)
    if name is not None:
        assert name.short == short_profile_name(text)
        assert text.isascii()


def test_short_profile_name_strips_only_the_prefix() -> None:
    assert short_profile_name("MIG 2g.12gb") == "2g.12gb"
    assert short_profile_name("2g.12gb") == "2g.12gb"
    assert short_profile_name("MIG something new") == "something new"


def test_catalog_names_are_the_grammars() -> None:
    for model in MODELS.values():
        for profile in model.gi_profiles:
            name = ProfileName.parse(profile.name)
            assert (name.compute_slices, name.gi_slices) == (None, profile.compute_slices)
            assert profile.short_name == name.short
            for ci in ci_profiles_for(profile):
                assert ProfileName.parse(ci.name).gpu_instance == name
                assert ProfileName.parse(ci.name).slices == ci.slices
    rtx = next(p for p in MODELS["RTX-PRO-6000"].gi_profiles if p.short_name == "2g.48gb+gfx")
    assert [ci.name for ci in ci_profiles_for(rtx)] == ["MIG 1c.2g.48gb+gfx", "MIG 2g.48gb+gfx"]


# -- placements and overlap ---------------------------------------------------------------------------


def slices_of(placement: Placement) -> set[int]:
    return set(range(placement.start, placement.end))


placements = st.builds(Placement, st.integers(0, 12), st.integers(1, 12))


@given(placements, placements)
def test_overlap_is_sharing_a_slice(one: Placement, other: Placement) -> None:
    assert one.overlaps(other) == bool(slices_of(one) & slices_of(other)) == other.overlaps(one)


def test_placement_is_one_type() -> None:
    assert smimig.Placement is smimig.models.Placement is Placement
    assert repr(Placement(0, 2)) == "Placement(start=0, size=2)"
    assert (str(Placement(4, 4)), Placement(4, 4).end) == ("4:4", 8)
    assert attrs.asdict(Placement(1, 2)) == {"start": 1, "size": 2}


A100 = MODELS["A100-40GB"]
OFFERED = [profile.geometry for profile in A100.gi_profiles]
BY_NAME = {profile.name: profile for profile in OFFERED}


def test_free_starts_count_fitting_and_blocking() -> None:
    half, quarter, seventh = BY_NAME["3g.20gb"], BY_NAME["2g.10gb"], BY_NAME["1g.5gb"]
    taken = [Placement(4, 4)]
    assert slice_count(OFFERED) == 8
    assert free_starts(half, taken) == [0]
    assert free_starts(quarter, taken) == [0, 2]
    assert free_starts(quarter, taken, [2, 4]) == [2]
    assert count_fitting(seventh, taken) == 4
    assert count_fitting(quarter, []) == 3
    # 1g.5gb at 0 blocks 1g.5gb@0, 1g.5gb+me@0, 1g.10gb@0, 2g.10gb@0, 3g.20gb@0, 4g.20gb@0, 7g.40gb@0
    assert blocking(OFFERED, [], seventh.at(0)) == 7
    assert blocking(OFFERED, taken, seventh.at(0)) == 6  # 7g.40gb@0 is blocked already
    assert ranked_starts(OFFERED, [], half) == [4, 0]  # 4 blocks fewer (no 4g.20gb, no 7g.40gb there)
    assert ranked_starts(OFFERED, taken, half) == [0]


def test_limits() -> None:
    media, big = BY_NAME["1g.5gb+me"], BY_NAME["7g.40gb"]
    assert limits_problem([big, big]) == "2 x 7g.40gb, but at most 1 fit (Total 1)"
    assert limits_problem([media, big]) == (
        "1g.5gb+me, 7g.40gb each need the GPU's one optical-flow engine (OFA); only one can have it"
    )
    assert limits_problem([BY_NAME["4g.20gb"], BY_NAME["3g.20gb"], BY_NAME["1g.5gb"]], 8) == (
        "the layout needs 9 memory slices; the GPU has 8"
    )
    assert limits_problem([BY_NAME["4g.20gb"], BY_NAME["3g.20gb"], BY_NAME["1g.5gb"]]) is None
    assert limits_problem([], 8) is None


def test_pack_keeps_the_order_asked_and_explains_a_miss() -> None:
    quarter, half = BY_NAME["2g.10gb"], BY_NAME["3g.20gb"]
    found = pack(OFFERED, [], [(quarter, None), (half, None), (quarter, 2)])
    assert found.fits
    assert found.starts == (0, 4, 2)
    missed = pack(OFFERED, [Placement(0, 4)], [(BY_NAME["4g.20gb"], None)])
    assert (missed.fits, missed.starts) == (False, None)
    assert missed.why == "4g.20gb needs slices 0-3 (one of them), but slices 0-3 are taken"
    assert pack(OFFERED, [], []).starts == ()


# -- the search against the brute force ---------------------------------------------------------------


def _distinct_geometries() -> list[Any]:
    seen: set[object] = set()
    params = []
    for key in sorted(MODELS):
        geometry = tuple(sorted(attrs.astuple(profile.geometry)[2:] for profile in MODELS[key].gi_profiles))
        params.append(pytest.param(key, id=key, marks=(pytest.mark.slow,) if geometry in seen else ()))
        seen.add(geometry)
    return params


def _valid(model: GpuModel, chosen: Sequence[ProfileGeometry], starts: Sequence[int]) -> bool:
    spots = [profile.at(start) for profile, start in zip(chosen, starts)]
    return all(start in profile.starts for profile, start in zip(chosen, starts)) and not any(
        one.overlaps(other) for position, one in enumerate(spots) for other in spots[position + 1 :]
    )


@pytest.mark.parametrize("model", _distinct_geometries())
def test_the_search_finds_a_packing_exactly_when_one_exists(model: str) -> None:
    catalog = MODELS[model]
    offered = [profile.geometry for profile in catalog.gi_profiles]
    for chosen in multisets(catalog):
        geometries = [profile.geometry for profile in chosen]
        assert feasible(offered, geometries, catalog.slices) == fits(catalog, chosen), chosen
        packing = pack(offered, [], [(profile, None) for profile in geometries])
        if fits(catalog, chosen):
            assert packing.starts is not None
            assert _valid(catalog, geometries, packing.starts), (chosen, packing)
        elif limits_problem(geometries, catalog.slices) is None:
            assert packing.starts is None
            assert "needs slices" in packing.why
