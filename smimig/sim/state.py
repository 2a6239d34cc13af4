"""The simulated node's state and the hardware's rules, independent of any text format.

Rules modelled from recordings: GI ids start at 1 and the lowest free id is taken (seed: 1 and 2; A100 80GB:
1 and 2); CI ids start at 0 in each GI (seed); a CI takes the lowest free start in its GI (seed: 0:1, 1:1);
``-dgi`` refuses a GI with CIs ("In use by another client"); profile instance limits (``-lgip`` Total).
Inferred (no recording shows them): the placement a GI gets without an explicit start is the free one
that blocks the fewest other possible placements, lowest start on a tie (this reproduces both recordings:
A30 2g.12gb at 0 then 2, A100 3g.40gb at 4 then 0); at most one GI owns the media engines (profiles with an
OFA); MIG device UUIDs are stable per (GPU, GI id, CI id), as the seed shows across -dci/-cci.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import attrs

from smimig._repr import AttrsRepr
from smimig.geometry import Placement, count_fitting, free_starts, limits_problem, ranked_starts, short_profile_name
from smimig.sim.catalog import CiProfileSpec, GiProfile, GpuModel, ci_profiles_for, model_named

__all__ = ["CiState", "Fault", "GiState", "GpuState", "Node", "ProcessState", "SimFailure"]

_NAMESPACE = uuid.UUID("5f3e9c1a-9d7b-4b8e-9a52-6d1c2f0e8a11")


class SimFailure(Exception):  # a simulated refusal, not an error in the simulator
    """The simulated hardware refuses an operation; ``reason`` is nvidia-smi's word for it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.define(repr=False)
class GiState(AttrsRepr):
    id: int
    profile_id: int
    start: int


@attrs.define(repr=False)
class CiState(AttrsRepr):
    gi: int
    id: int
    profile_id: int
    start: int


@attrs.frozen(repr=False)
class Fault(AttrsRepr):
    """Make the ``nth`` call that uses ``option`` (``"-cgi"``, ``"-dgi"``, ``"-cci"``, ``"-dci"``, ``"-mig"``)
    fail the way nvidia-smi fails with ``reason`` ("Insufficient Resources", "In use by another client", …),
    changing nothing. Counted per node from its creation (or from ``--reset`` for the stand-in binary).
    """

    option: str
    reason: str
    nth: int = 1

    def __attrs_post_init__(self) -> None:
        if self.option not in ("-cgi", "-cci", "-dci", "-dgi", "-mig"):
            raise ValueError(f"faults apply to -cgi, -cci, -dci, -dgi or -mig, not {self.option!r}")
        if isinstance(self.nth, bool) or not isinstance(self.nth, int) or self.nth < 1:
            raise ValueError(f"nth counts from 1; got {self.nth!r}")

    @classmethod
    def parse(cls, text: str) -> Fault:
        """``"-cgi=Insufficient Resources@2"`` (``@N`` optional, default 1)."""
        option, _, rest = text.partition("=")
        reason, _, nth = rest.rpartition("@") if "@" in rest else (rest, "", "1")
        if not reason or not nth.isdigit():
            raise ValueError(f"a fault is OPTION=REASON[@N], e.g. '-cgi=Insufficient Resources@2'; got {text!r}")
        return cls(option, reason, int(nth))


@attrs.define(repr=False)
class ProcessState(AttrsRepr):
    """A simulated process on a GPU (and, in MIG mode, in one compute instance)."""

    pid: int
    name: str
    gpu: int
    gi: int | None = None
    ci: int | None = None
    memory_mib: int = 256

    @classmethod
    def parse(cls, text: str) -> ProcessState:
        """``"0/1/0=4242:python train.py"`` (GPU/GI/CI) or ``"1=4243:python"`` (a GPU in MIG mode off)."""
        where, _, what = text.partition("=")
        pid, _, name = what.partition(":")
        parts = where.split("/")
        if not pid.isdigit() or not name or len(parts) not in (1, 3) or not all(p.isdigit() for p in parts):
            raise ValueError(f"a process is GPU[/GI/CI]=PID:NAME, e.g. '0/1/0=4242:python train.py'; got {text!r}")
        gpu, gi, ci = (int(parts[0]), None, None) if len(parts) == 1 else tuple(map(int, parts))
        return cls(int(pid), name, gpu, gi, ci)


@attrs.define(repr=False)
class GpuState(AttrsRepr):
    index: int
    mig_current: bool = False
    mig_pending: bool = False
    gis: list[GiState] = attrs.Factory(list)
    cis: list[CiState] = attrs.Factory(list)


def _lowest_free(used: Iterable[int], first: int) -> int:
    taken = set(used)
    candidate = first
    while candidate in taken:
        candidate += 1
    return candidate


@attrs.define(repr=False)
class Node(AttrsRepr):
    """A node of identical simulated GPUs."""

    model: GpuModel
    gpus: list[GpuState]
    faults: list[Fault] = attrs.Factory(list)
    processes: list[ProcessState] = attrs.Factory(list)
    calls: dict[str, int] = attrs.Factory(dict)  # calls per mutating option, for the faults

    @classmethod
    def new(cls, model: str | GpuModel, gpus: int = 1, *, mig: bool = False) -> Node:
        if isinstance(gpus, bool) or not isinstance(gpus, int) or not 1 <= gpus <= 64:
            raise ValueError(f"gpus must be an int from 1 to 64; got {gpus!r}")
        resolved = model_named(model) if isinstance(model, str) else model
        return cls(resolved, [GpuState(index, mig, mig) for index in range(gpus)])

    # -- identity ---------------------------------------------------------------------------------

    def gpu_uuid(self, index: int) -> str:
        if index < len(self.model.uuids):
            return self.model.uuids[index]
        return "GPU-" + str(uuid.uuid5(_NAMESPACE, f"{self.model.key}/{index}"))

    def bus_id(self, index: int) -> str:
        if index < len(self.model.bus_ids):
            return self.model.bus_ids[index]
        return f"00000000:{0x10 + 0x10 * index:02X}:00.0"

    def mig_uuid(self, gpu: int, gi: int, ci: int) -> str:
        known = self.model.mig_uuids.get((gpu, gi, ci))
        if known is not None:
            return known
        return "MIG-" + str(uuid.uuid5(_NAMESPACE, f"{self.gpu_uuid(gpu)}/{gi}/{ci}"))

    # -- lookups ----------------------------------------------------------------------------------

    def gpu(self, index: int) -> GpuState:
        return self.gpus[index]

    def find_gi_profile(self, ref: str) -> GiProfile | None:
        """A GI profile by id (``"5"``), short name (``"2g.12gb"``) or full name (``"MIG 2g.12gb"``)."""
        for profile in self.model.gi_profiles:
            if ref in (str(profile.id), profile.short_name, profile.name):
                return profile
        return None

    def gi(self, gpu: int, gi_id: int) -> GiState | None:
        return next((gi for gi in self.gpus[gpu].gis if gi.id == gi_id), None)

    def gi_profile_of(self, gi: GiState) -> GiProfile:
        return self.model.gi_profile(gi.profile_id)

    def ci_profiles(self, gi: GiState) -> tuple[CiProfileSpec, ...]:
        return ci_profiles_for(self.gi_profile_of(gi))

    def find_ci_profile(self, gi: GiState, ref: str | None) -> CiProfileSpec | None:
        for profile in self.ci_profiles(gi):
            if ref is None and profile.is_default:
                return profile
            if ref is not None and ref in (str(profile.id), profile.name, short_profile_name(profile.name)):
                return profile
        return None

    def ci_profile_of(self, gi: GiState, ci: CiState) -> CiProfileSpec:
        return next(profile for profile in self.ci_profiles(gi) if profile.id == ci.profile_id)

    # -- GPU instances ----------------------------------------------------------------------------

    def _taken(self, gpu: int) -> list[Placement]:
        return [self.gi_profile_of(gi).geometry.at(gi.start) for gi in self.gpus[gpu].gis]

    def _limits_refuse(self, gpu: int, profile: GiProfile) -> bool:
        """Whether one more GI of ``profile`` breaks an instance limit or the one-media-GI rule."""
        chosen = [self.gi_profile_of(gi).geometry for gi in self.gpus[gpu].gis] + [profile.geometry]
        return limits_problem(chosen) is not None  # the slices are the placement's to check

    def gi_free_count(self, gpu: int, profile: GiProfile) -> int:
        """How many more GIs of this profile fit now (``-lgip`` Free)."""
        if self._limits_refuse(gpu, profile):
            return 0
        room = profile.instances - sum(1 for gi in self.gpus[gpu].gis if gi.profile_id == profile.id)
        return max(0, min(room, count_fitting(profile.geometry, self._taken(gpu))))

    def create_gi(self, gpu: int, profile: GiProfile, start: int | None = None) -> GiState:
        state = self.gpus[gpu]
        if not state.mig_current:
            raise SimFailure("Not Supported")
        if self._limits_refuse(gpu, profile):
            raise SimFailure("Insufficient Resources")
        offered = [other.geometry for other in self.model.gi_profiles]
        free = ranked_starts(offered, self._taken(gpu), profile.geometry)  # the least blocking first
        if start is not None:
            if start not in profile.starts:
                raise SimFailure("Invalid Argument")
            if start not in free:
                raise SimFailure("Insufficient Resources")
            chosen = start
        elif not free:
            raise SimFailure("Insufficient Resources")
        else:
            chosen = free[0]
        gi = GiState(_lowest_free((gi.id for gi in state.gis), 1), profile.id, chosen)
        state.gis.append(gi)
        state.gis.sort(key=lambda item: item.id)
        return gi

    def fault_for(self, option: str) -> str | None:
        """Count a call that uses ``option``; the reason it must fail with, if a fault says so."""
        self.calls[option] = self.calls.get(option, 0) + 1
        for fault in self.faults:
            if fault.option == option and fault.nth == self.calls[option]:
                return fault.reason
        return None

    def busy(self, gpu: int, gi: int | None = None, ci: int | None = None) -> bool:
        """Whether a simulated process runs on the GPU (or that GI, or that CI)."""
        return any(
            process.gpu == gpu and (gi is None or process.gi == gi) and (ci is None or process.ci == ci)
            for process in self.processes
        )

    def reset_gpu(self, gpu: int) -> None:
        """What ``nvidia-smi -r`` does once the GPU is idle: a pending MIG mode takes effect."""
        if self.busy(gpu):
            raise SimFailure("In use by another client")
        state = self.gpus[gpu]
        if not state.mig_pending:
            state.gis, state.cis = [], []
        state.mig_current = state.mig_pending

    def destroy_gi(self, gpu: int, gi_id: int) -> None:
        state = self.gpus[gpu]
        if self.gi(gpu, gi_id) is None:
            raise SimFailure("Not Found")
        if self.busy(gpu, gi_id):
            raise SimFailure("In use by another client")
        if any(ci.gi == gi_id for ci in state.cis):
            raise SimFailure("In use by another client")
        state.gis = [gi for gi in state.gis if gi.id != gi_id]

    # -- compute instances ------------------------------------------------------------------------

    def _ci_taken(self, gpu: int, gi: GiState) -> list[Placement]:
        return [self.ci_profile_of(gi, ci).geometry.at(ci.start) for ci in self.gpus[gpu].cis if ci.gi == gi.id]

    def ci_free_count(self, gpu: int, gi: GiState, profile: CiProfileSpec) -> int:
        return count_fitting(profile.geometry, self._ci_taken(gpu, gi))

    def create_ci(self, gpu: int, gi: GiState, profile: CiProfileSpec) -> CiState:
        state = self.gpus[gpu]
        free = free_starts(profile.geometry, self._ci_taken(gpu, gi))
        if not free:
            raise SimFailure("Insufficient Resources")
        ci_id = _lowest_free((ci.id for ci in state.cis if ci.gi == gi.id), 0)
        ci = CiState(gi.id, ci_id, profile.id, free[0])
        state.cis.append(ci)
        state.cis.sort(key=lambda item: (item.gi, item.id))
        return ci

    def destroy_ci(self, gpu: int, gi_id: int, ci_id: int) -> None:
        state = self.gpus[gpu]
        if self.busy(gpu, gi_id, ci_id):
            raise SimFailure("In use by another client")
        before = len(state.cis)
        state.cis = [ci for ci in state.cis if (ci.gi, ci.id) != (gi_id, ci_id)]
        if len(state.cis) == before:
            raise SimFailure("Not Found")

    # -- MIG mode ---------------------------------------------------------------------------------

    def set_mig(self, gpu: int, enabled: bool) -> bool:
        """Change the MIG mode; False when it stays pending because processes use the GPU."""
        state = self.gpus[gpu]
        if not enabled and state.gis:
            raise SimFailure("In use by another client")
        state.mig_pending = enabled
        if self.busy(gpu) and state.mig_current != enabled:
            return False
        state.mig_current = enabled
        return True

    # -- checks and persistence -------------------------------------------------------------------

    def check(self) -> None:
        """Assert the invariants: no overlap, limits kept, every CI in an existing GI, unique ids."""
        for state in self.gpus:
            assert state.mig_current or not state.gis, "GIs on a GPU with MIG off"
            taken = self._taken(state.index)
            for position, placement in enumerate(taken):
                assert placement.end <= self.model.slices, "GI beyond the last slice"
                assert not any(placement.overlaps(other) for other in taken[position + 1 :]), "GIs overlap"
            assert len({gi.id for gi in state.gis}) == len(state.gis), "duplicate GI id"
            problem = limits_problem([self.gi_profile_of(gi).geometry for gi in state.gis])
            assert problem is None, problem  # instance limits, media engines once
            for gi in state.gis:
                cis = [ci for ci in state.cis if ci.gi == gi.id]
                assert len({ci.id for ci in cis}) == len(cis), "duplicate CI id"
                spans = self._ci_taken(state.index, gi)
                for position, placement in enumerate(spans):
                    assert placement.end <= self.gi_profile_of(gi).compute_slices, "CI outside its GI"
                    assert not any(placement.overlaps(other) for other in spans[position + 1 :]), "CIs overlap"
            assert all(self.gi(state.index, ci.gi) is not None for ci in state.cis), "CI without GI"

    def to_json(self) -> dict[str, object]:
        return {
            "model": self.model.key,
            "gpus": [attrs.asdict(state) for state in self.gpus],
            "faults": [attrs.asdict(fault) for fault in self.faults],
            "processes": [attrs.asdict(process) for process in self.processes],
            "calls": dict(self.calls),
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Node:
        model = model_named(str(data["model"]))
        gpus = []
        for raw in data["gpus"]:  # type: ignore[attr-defined]
            gpus.append(
                GpuState(
                    index=raw["index"],
                    mig_current=raw["mig_current"],
                    mig_pending=raw["mig_pending"],
                    gis=[GiState(**gi) for gi in raw["gis"]],
                    cis=[CiState(**ci) for ci in raw["cis"]],
                )
            )
        faults = [Fault(**fault) for fault in data.get("faults", [])]  # type: ignore[attr-defined]
        processes = [ProcessState(**process) for process in data.get("processes", [])]  # type: ignore[attr-defined]
        calls = dict(data.get("calls", {}))  # type: ignore[call-overload]
        return cls(model, gpus, faults, processes, calls)
