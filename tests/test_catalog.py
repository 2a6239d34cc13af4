"""The simulator's GPU models: recorded profile tables, PCI ids, slices, what each says it infers, the CLI list."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

import smimig
from smimig import GiSpec, Layout, Placement, cli, parsers
from smimig.sim import SimulatedRunner
from smimig.sim.catalog import MODELS, ci_profiles_for, describe_models, mib_of, model_named
from tests.test_sim import recorded

# Every model's -lgip recording under fixtures/. The A100 40GB has none: its
# figures were read off a recording (realdata/a100-40gb-figures.md), not kept verbatim.
LGIP = {
    "A30": "a30-driver545/lgip.txt",
    "A100-80GB": "a100-80gb-pcie-driver515/lgip.txt",
    "H100-80GB": "h100-80gb-driver580/lgip.stdout",
    "H200-141GB": "h200-141gb-driver580/lgip.txt",
    "GH200-480GB": "more-profile-tables/gh200-480gb-driver550-lgip.txt",
    "B200": "more-profile-tables/b200-lgip-partial.txt",  # the first three rows only
    "RTX-PRO-6000": "more-profile-tables/rtx-pro-6000-blackwell-driver580-lgip.txt",
    "RTX-PRO-6000-GRID4": "more-profile-tables/rtx-pro-6000-blackwell-driver580-lgip.txt",
}


def test_every_model_but_one_has_a_recorded_profile_table() -> None:
    assert set(MODELS) - set(LGIP) == {"A100-40GB"}


@pytest.mark.parametrize("model", sorted(LGIP))
def test_lgip_as_recorded(model: str) -> None:
    """Through the real parser, every recorded row; byte for byte too, except the B200's partial table, which
    an older driver printed 79 columns wide (the model uses driver 580's 81)."""
    text = recorded(LGIP[model])
    printed = SimulatedRunner(model, mig=True).run(["mig", "-lgip"]).stdout
    expected = parsers.parse_gi_profiles(text)
    assert parsers.parse_gi_profiles(printed)[: len(expected)] == expected
    if model == "B200":
        assert [profile.id for profile in expected] == [19, 20, 15]
    else:
        assert printed == text


def test_b200_says_which_rows_are_recorded_and_which_inferred() -> None:
    b200 = MODELS["B200"]
    assert [p.short_name for p in b200.gi_profiles] == [
        "1g.23gb",
        "1g.23gb+me",
        "1g.45gb",
        "2g.45gb",
        "3g.90gb",
        "4g.90gb",
        "7g.180gb",
    ]
    recorded_text, inferred_text = " ".join(b200.recorded), " ".join(b200.inferred)
    for row in ("19 (1g.23gb)", "20 (1g.23gb+me)", "15 (1g.45gb)"):
        assert row in recorded_text
    for row in ("14 (2g.45gb)", "9 (3g.90gb)", "5 (4g.90gb)", "0 (7g.180gb)"):
        assert row in inferred_text
    assert "placement" in inferred_text
    assert "driver" in inferred_text


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_says_what_it_infers(model: str) -> None:
    entry = MODELS[model]
    assert entry.recorded
    assert entry.inferred
    assert all(isinstance(item, str) and item for item in (*entry.recorded, *entry.inferred))


def test_placements_that_are_inferred_say_so() -> None:
    for key in ("GH200-480GB", "B200", "RTX-PRO-6000", "RTX-PRO-6000-GRID4", "A100-80GB"):
        assert any("placement" in item for item in MODELS[key].inferred), key
    assert any("memory_mib" in item or "mib_of" in item for item in MODELS["H200-141GB"].inferred)


def test_pci_device_ids_as_mig_parted_filters_them() -> None:
    assert {key: model.pci_device_id for key, model in MODELS.items()} == {
        "A30": "0x20B710DE",
        "A100-40GB": "0x20B010DE",
        "A100-80GB": "0x20B510DE",
        "H100-80GB": "0x233010DE",
        "H200-141GB": "0x233510DE",
        "GH200-480GB": "0x234210DE",
        "B200": "0x290110DE",
        "RTX-PRO-6000": "0x2BB510DE",
        "RTX-PRO-6000-GRID4": "0x2BB510DE",
    }


def test_slices() -> None:
    slices = {key: model.slices for key, model in MODELS.items()}
    assert slices == {
        "A30": 4,
        "A100-40GB": 8,
        "A100-80GB": 8,
        "H100-80GB": 8,
        "H200-141GB": 8,
        "GH200-480GB": 8,
        "B200": 8,
        "RTX-PRO-6000": 12,
        "RTX-PRO-6000-GRID4": 4,
    }


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("RTX-PRO-6000", {14: ((0, 3, 6, 9), 3), 5: ((0, 6), 6), 0: ((0,), 12)}),
        ("RTX-PRO-6000-GRID4", {14: ((0, 1, 2, 3), 1), 5: ((0, 2), 2), 0: ((0,), 4)}),
    ],
)
def test_rtx_placement_grids(model: str, expected: dict[int, tuple[tuple[int, ...], int]]) -> None:
    listing = parsers.parse_gi_placements(SimulatedRunner(model).run(["mig", "-lgipp"]).stdout)
    found = {p.profile_id: (tuple(s.start for s in p.placements), p.placements[0].size) for p in listing}
    assert len(found) == 11
    assert {key: found[key] for key in expected} == expected


def test_mib_of_reproduces_every_recorded_figure() -> None:
    pairs = {5.81: 5952, 11.69: 11968, 23.44: 24000, 39.25: 40192, 23.62: 24192, 9.75: 9984, 19.62: 20096}
    assert {gib: mib_of(gib) for gib in pairs} == pairs
    assert MODELS["RTX-PRO-6000"].gi_profile(14).memory_mib == 24192  # its table shows this 1g MIG device
    assert MODELS["A100-80GB"].gi_profile(9).memory_mib == 40192


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("h200", "H200-141GB"),
        ("H200-141gb", "H200-141GB"),
        ("gh200", "GH200-480GB"),
        ("b200", "B200"),
        ("rtx-pro-6000", "RTX-PRO-6000"),
        ("RTX-PRO-6000-Blackwell", "RTX-PRO-6000"),
        ("rtx-pro-6000-grid4", "RTX-PRO-6000-GRID4"),
        ("a100-80gb-pcie", "A100-80GB"),
        ("A100-80GB", "A100-80GB"),
        ("a30", "A30"),
    ],
)
def test_model_names_are_case_insensitive(name: str, key: str) -> None:
    assert model_named(name).key == key


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown GPU model 'V100'; known: ") as unknown:
        model_named("V100")
    assert all(key in str(unknown.value) for key in MODELS)


def test_ci_profiles_keep_the_suffix() -> None:
    rtx = MODELS["RTX-PRO-6000"]
    assert [p.name for p in ci_profiles_for(rtx.gi_profile(35))] == ["MIG 1c.2g.48gb+gfx", "MIG 2g.48gb+gfx"]
    assert [p.name for p in ci_profiles_for(rtx.gi_profile(64))] == ["MIG 1c.2g.48gb+me.all", "MIG 2g.48gb+me.all"]
    assert [(p.name, p.instances) for p in ci_profiles_for(rtx.gi_profile(32))] == [
        ("MIG 1c.4g.96gb+gfx", 4),
        ("MIG 2c.4g.96gb+gfx", 2),
        ("MIG 3c.4g.96gb+gfx", 1),
        ("MIG 4g.96gb+gfx", 1),
    ]


# A balanced layout for each simulated model, in mig-parted's format and selected by PCI device id as NVIDIA's
# default config's "all-balanced" selects them (two of the smallest profile, one 2g, one 3g where it fits).
ALL_BALANCED = """\
version: v1
mig-configs:
  all-balanced:
    # RTX PRO 6000 Blackwell
    - device-filter: ["0x2BB510DE"]
      devices: all
      mig-enabled: true
      mig-devices:
        "1g.24gb": 2
        "2g.48gb": 1
    # B200
    - device-filter: [ "0x290110DE" ]
      devices: all
      mig-enabled: true
      mig-devices:
        "1g.23gb": 2
        "2g.45gb": 1
        "3g.90gb": 1
    # H200 141GB, H200 NVL
    - device-filter: ["0x233510DE", "0x233B10DE"]
      devices: all
      mig-enabled: true
      mig-devices:
        "1g.18gb": 2
        "2g.35gb": 1
        "3g.71gb": 1
    # H100-80GB, H800-80GB, A100-80GB, A800-80GB
    - device-filter: ["0x233010DE", "0x233110DE", "0x232210DE", "0x20B210DE", "0x20B510DE", "0x20F310DE", "0x20F510DE", "0x232410DE"]
      devices: all
      mig-enabled: true
      mig-devices:
        "1g.10gb": 2
        "2g.20gb": 1
        "3g.40gb": 1
    # A100-40GB, A800-40GB
    - device-filter: ["0x20B010DE", "0x20B110DE", "0x20F110DE", "0x20F610DE"]
      devices: all
      mig-enabled: true
      mig-devices:
        "1g.5gb": 2
        "2g.10gb": 1
        "3g.20gb": 1
    # A30-24GB
    - device-filter: "0x20B710DE"
      devices: all
      mig-enabled: true
      mig-devices:
        "1g.6gb": 2
        "2g.12gb": 1
    # H100-96GB, PG506-96GB, GH200, H20
    - device-filter: ["0x234210DE", "0x233D10DE", "0x20B610DE", "0x232910DE"]
      devices: all
      mig-enabled: true
      mig-devices:
        "1g.12gb": 2
        "2g.24gb": 1
        "3g.48gb": 1
"""


@pytest.mark.parametrize("model", sorted(MODELS))
def test_nvidias_balanced_config_applies_to_every_model(model: str, tmp_path: Path) -> None:
    path = tmp_path / "config-default.yaml"
    path.write_text(ALL_BALANCED, encoding="utf-8")
    smi = smimig.Smi(runner=SimulatedRunner(model))
    layout = smi.load_layout(path, config="all-balanced")
    wanted = layout.gpus[0]
    assert wanted
    smi.apply(layout)
    assert sorted(gi.short_name for gi in smi.list_gis()) == sorted(spec.profile for spec in wanted)
    assert len(smi.list_mig_devices()) == len(wanted)


@pytest.mark.parametrize(("model", "unit"), [("RTX-PRO-6000", 3), ("RTX-PRO-6000-GRID4", 1)])
def test_rtx_layouts_plan_and_apply_on_both_grids(model: str, unit: int) -> None:
    smi = smimig.Smi(runner=SimulatedRunner(model, gpus=2))
    layout = Layout.from_dict(
        {
            0: [
                {"profile": "2g.48gb+gfx", "cis": ["1c.2g.48gb+gfx", "1c.2g.48gb+gfx"]},
                "1g.24gb+me.all",
                "1g.24gb-me",
            ],
            1: ["1g.24gb:3" if unit == 3 else "1g.24gb:1", "2g.48gb"],
        }
    )
    smi.apply(layout)
    placed = {(gi.gpu, gi.short_name): gi.placement for gi in smi.list_gis()}
    assert placed[(0, "2g.48gb+gfx")].size == 2 * unit
    assert placed[(1, "1g.24gb")] == Placement(unit, unit)
    assert placed[(1, "2g.48gb")] == Placement(2 * unit, 2 * unit)
    cis = sorted(ci.short_name for ci in smi.list_cis(0))
    assert cis == ["1c.2g.48gb+gfx", "1c.2g.48gb+gfx", "1g.24gb+me.all", "1g.24gb-me"]
    again = smi.apply(smi.export())
    assert not again.plan.steps
    with pytest.raises(smimig.LayoutError, match="optical-flow"):
        smi.plan(Layout({0: (GiSpec("1g.24gb+me.all"), GiSpec("1g.24gb+me"))}))


def test_simulate_list() -> None:
    assert describe_models().count("\n    inferred: ") == len(MODELS)
    for word in ("list", "LIST", "help"):
        out, err = io.StringIO(), io.StringIO()
        assert cli.main(["--simulate", word], out=out, err=err) == cli.EXIT_OK
        text = out.getvalue()
        assert text == describe_models()
        for key, model in MODELS.items():
            assert re.search(rf"^{re.escape(key)}\b", text, re.MULTILINE)
            for figure in (model.name, model.pci_device_id, model.driver):
                assert figure in text
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["--simulate", "V100x2", "status"], out=out, err=err) == cli.EXIT_USAGE
    assert all(key in err.getvalue() for key in MODELS)
    assert "--simulate list" in err.getvalue()
