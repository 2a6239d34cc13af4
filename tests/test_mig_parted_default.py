"""NVIDIA's own mig-parted default configuration, applied config by config to every simulated GPU model.

NVIDIA's default config is the file NVIDIA ships (``deployments/systemd/config-default.yaml`` of
NVIDIA/mig-parted; not committed here: tests/nvidia_files.py finds it in shared/): 81 configs, most of them
named for some GPUs and silent about the others. For every (config, model) pair this test works out, from
the YAML alone and apart from smimig's resolver, what the config asks of that model:

- an entry whose ``device-filter`` names the model's PCI device id, or that has no filter, selects it; the
  first such entry is the one this file relies on (no config of this file has two that select one model);
- the config applies when every profile it asks for is in the model's profile table: then smimig must build
  exactly those instances (each profile's count of GPU instances, each with its default compute instance),
  or turn MIG on or off as asked, and a second apply must change nothing;
- otherwise (a config written for another GPU, e.g. ``all-1g.5gb`` on an H100) mig-parted itself would fail,
  and smimig must refuse with a ``LayoutError`` naming the profile (inside an ``ApplyError`` when MIG was
  turned on to read the profiles, and turned off again).

README's "Supported GPUs and drivers" quotes :func:`conformance`'s counts; :func:`test_conformance_figures`
pins them, so the README cannot drift from the catalog.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

import smimig
from smimig import ApplyError, LayoutError
from smimig.sim import SimulatedRunner
from smimig.sim.catalog import MODELS, GpuModel
from tests.nvidia_files import MISSING, default_config

_CONFIG = default_config()
if _CONFIG is None:
    pytest.skip(MISSING, allow_module_level=True)
CONFIG: Path = _CONFIG
DATA: Mapping[str, Any] = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
CONFIGS: Mapping[str, list[Mapping[str, Any]]] = DATA["mig-configs"]
GPUS = 2  # two GPUs of the model: "devices: all" must reach both


def _filters(entry: Mapping[str, Any]) -> list[str] | None:
    value = entry.get("device-filter")
    if value is None:
        return None
    return [item.upper() for item in ([value] if isinstance(value, str) else value)]


def selecting_entry(config: str, model: GpuModel) -> Mapping[str, Any] | None:
    """The first entry of ``config`` that selects ``model`` (by its PCI device id, or with no filter)."""
    for entry in CONFIGS[config]:
        filters = _filters(entry)
        if filters is None or model.pci_device_id.upper() in filters:
            return entry
    return None


def asks(entry: Mapping[str, Any]) -> Counter[str]:
    """The GPU instances an entry asks for, by profile short name."""
    if not entry["mig-enabled"]:
        return Counter()
    return Counter({str(profile): int(count) for profile, count in (entry.get("mig-devices") or {}).items()})


def available(model: GpuModel) -> set[str]:
    return {profile.name.removeprefix("MIG ") for profile in model.gi_profiles}


CASES = [
    (config, key)
    for config in CONFIGS
    for key, model in sorted(MODELS.items())
    if selecting_entry(config, model) is not None
]


def conformance() -> tuple[int, int, int]:
    """(pairs applied exactly, pairs refused as written for another GPU, configs), for README's figures."""
    applied = refused = 0
    for config, key in CASES:
        entry = selecting_entry(config, MODELS[key])
        assert entry is not None
        if set(asks(entry)) <= available(MODELS[key]):
            applied += 1
        else:
            refused += 1
    return applied, refused, len(CONFIGS)


def test_the_file_is_nvidias_default() -> None:
    assert DATA["version"] == "v1"
    assert len(CONFIGS) == 81
    assert {"all-disabled", "all-enabled", "all-balanced", "all-7g.141gb", "all-1g.24gb.gfx"} <= set(CONFIGS)


def test_every_model_is_selected_by_a_filter_of_its_own() -> None:
    # Each simulated model's PCI device id is one that NVIDIA's file names in some device-filter.
    named = {item for entries in CONFIGS.values() for entry in entries for item in (_filters(entry) or [])}
    assert {model.pci_device_id.upper() for model in MODELS.values()} <= named


# The configs every model has an entry of its own in run in the default suite; the whole sweep is marked slow
# (each pair is a plan and two applies on a two-GPU node: ~30 ms, over 600 pairs) and .ci/run runs it.
EVERY_MODEL = ("all-disabled", "all-enabled", "all-balanced")


def _marked(config: str, key: str) -> Any:
    marks = () if config in EVERY_MODEL else (pytest.mark.slow,)
    return pytest.param(config, key, id=f"{config}@{key}", marks=marks)


@pytest.mark.parametrize(("config", "key"), [_marked(config, key) for config, key in CASES])
def test_default_config_applies_exactly(config: str, key: str) -> None:
    model = MODELS[key]
    entry = selecting_entry(config, model)
    assert entry is not None
    wanted = asks(entry)
    runner = SimulatedRunner(key, gpus=GPUS)
    smi = smimig.Smi(runner=runner)
    if not set(wanted) <= available(model):
        missing = sorted(set(wanted) - available(model))
        with pytest.raises((LayoutError, ApplyError)) as caught:
            smi.apply(smi.load_layout(CONFIG, config=config))
        # With MIG off the driver lists no profiles: the GPU is planned once MIG is on, refused then and
        # rolled back, so apply says what ran (ApplyError) around the refusal.
        error = caught.value
        refusal = error.failure if isinstance(error, ApplyError) else error
        assert isinstance(refusal, LayoutError)
        assert any(name in str(refusal) for name in missing)
        assert [mode.current for mode in smi.mig_mode()] == [False] * GPUS
        return
    smi.apply(smi.load_layout(CONFIG, config=config))
    modes = smi.mig_mode()
    assert [mode.current for mode in modes] == [bool(entry["mig-enabled"])] * GPUS
    if entry["mig-enabled"]:
        gis = smi.list_gis()
        cis = smi.list_cis()
        for gpu in range(GPUS):
            own = [gi for gi in gis if gi.gpu == gpu]
            assert Counter(gi.short_name for gi in own) == wanted
            for gi in own:  # mig-parted gives each GPU instance its default compute instance
                assert [ci.short_name for ci in cis if ci.gpu == gpu and ci.gi == gi.id] == [gi.short_name]
    second = smi.apply(smi.load_layout(CONFIG, config=config))
    assert not second.ran


def test_conformance_figures() -> None:
    # The figures README quotes: a change to the catalog or to the file changes them on purpose, here.
    assert conformance() == (95, 620, 81)
