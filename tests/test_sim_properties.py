"""Random create/destroy sequences never break the simulator's invariants, and all it prints parses."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import smimig
from smimig.sim import SimulatedRunner
from smimig.sim.catalog import MODELS

OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["cgi", "cgi-C", "cci", "dci", "dgi", "dci-one", "dgi-one", "mig-off", "mig-on"]),
        st.integers(0, 1),  # GPU
        st.integers(0, 20),  # picks a profile, a GI or a CI
        st.integers(0, 7),  # a placement start, sometimes
        st.booleans(),  # with an explicit start or not
    ),
    max_size=25,
)


def _apply(smi: smimig.Smi, runner: SimulatedRunner, operation: tuple[str, int, int, int, bool]) -> None:
    kind, gpu, pick, start, placed = operation
    model = runner.node.model
    gis = runner.node.gpus[gpu].gis
    profile = model.gi_profiles[pick % len(model.gi_profiles)]
    try:
        if kind in ("cgi", "cgi-C"):
            item: Any = (profile.short_name, start) if placed else profile.id
            smi.create_gi(gpu, [item], ci=kind == "cgi-C")
        elif kind == "cci" and gis:
            gi = gis[pick % len(gis)]
            choices = runner.node.ci_profiles(gi)
            smi.create_ci(gpu, gi.id, [choices[start % len(choices)].id])
        elif kind == "dci":
            smi.destroy_ci(gpu)
        elif kind == "dgi":
            smi.destroy_gi(gpu)
        elif kind == "dci-one" and gis:
            smi.destroy_ci(gpu, gi=gis[pick % len(gis)].id, ci=start % 3)
        elif kind == "dgi-one" and gis:
            smi.destroy_gi(gpu, gi=gis[pick % len(gis)].id)
        elif kind == "mig-off":
            smi.disable_mig(gpu)
        elif kind == "mig-on":
            smi.enable_mig(gpu)
    except smimig.MigOperationError:
        pass  # refusals are part of the game; what matters is the state afterwards


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(MODELS)), OPERATIONS)
def test_random_operations_keep_invariants_and_parse(model: str, operations: list[Any]) -> None:
    runner = SimulatedRunner(model, gpus=2, mig=True)
    smi = smimig.Smi(runner=runner)
    for operation in operations:
        _apply(smi, runner, operation)
        runner.node.check()
    # Everything the simulator prints in this state goes through the real parsers without error …
    gis = smi.list_gis()
    cis = smi.list_cis()
    devices = smi.list_mig_devices()
    gpus = smi.list_gpus()
    smi.list_gi_profiles()
    smi.list_gi_placements()
    smi.list_ci_profiles()
    smi.list_ci_placements()
    smi.mig_mode()
    # … and the listings agree with the state and with each other.
    state_gis = sorted((s.index, g.id, g.start) for s in runner.node.gpus for g in s.gis)
    assert sorted((gi.gpu, gi.id, gi.placement.start) for gi in gis) == state_gis
    assert len(cis) == len(devices) == sum(len(gpu.mig_devices) for gpu in gpus)
    assert {(ci.gpu, ci.gi, ci.id) for ci in cis} == {(d.gpu, d.gi, d.ci) for d in devices}
    for profile in smi.list_gi_profiles():
        used = sum(1 for gi in gis if gi.gpu == profile.gpu and gi.profile_id == profile.id)
        assert used + profile.free <= profile.total
